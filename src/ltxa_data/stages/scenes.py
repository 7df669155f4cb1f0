"""scenes: hard cuts in each video (PySceneDetect), so that no target window crosses one."""

from __future__ import annotations

import polars as pl

from ..errors import SystemicError
from ..gates import failure
from ..media import MediaError
from ..schemas import blank_row
from .base import Partition, Stage, StageResult, guarded, partitions_by
from .scan import ok_videos


def _small_frame_stream(path: str):  # -> scenedetect VideoStream
    """PySceneDetect's PyAV stream, but each frame is scaled by FFmpeg straight from the decoded picture
    to the width PySceneDetect would downscale to (>= 256 px): no full-size BGR frame, no Python resize."""
    from scenedetect.backends.pyav import VideoStreamAv
    from scenedetect.scene_manager import compute_downscale_factor

    class SmallFrames(VideoStreamAv):
        @property
        def frame_size(self) -> tuple[int, int]:
            w, h = super().frame_size
            f = compute_downscale_factor(max(w, h))
            return max(1, round(w / f)), max(1, round(h / f))

        def read(self, decode: bool = True):  # type: ignore[override]
            got = super().read(decode=False)
            if not got or not decode:
                return got
            w, h = self.frame_size
            return self._frame.reformat(width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()

    return SmallFrames(path)


def detect_cuts(path: str, threshold: float, min_shot_s: float) -> list[float]:
    """Instants (seconds) where a new shot starts, from PySceneDetect's content detector (HSV
    change between consecutive frames, decoded with PyAV on a picture FFmpeg downscales)."""
    from scenedetect import ContentDetector, SceneManager

    try:
        video = _small_frame_stream(path)
        manager = SceneManager()
        manager.auto_downscale = False  # the stream's frames are small already
        manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=min_shot_s))
        manager.detect_scenes(video=video)
    except Exception as e:  # PySceneDetect wraps decoder errors in its own types
        raise MediaError(f"scene detection failed: {type(e).__name__}: {e}") from None
    return [round(c.get_seconds(), 6) for c in manager.get_cut_list()]


def crosses_cut(start_s: float, last_frame_s: float, cuts: list[float] | None, eps: float = 1e-6) -> bool:
    """Whether a window whose frames are shown from `start_s` to `last_frame_s` shows frames of
    two shots: a cut at or before its first frame, or after its last, does not count."""
    return any(start_s + eps < c <= last_frame_s + eps for c in cuts or [])


class ScenesStage(Stage):
    name = "scenes"
    table = "scenes"
    version = "2"
    reads = ("videos",)
    sections = ("scenes",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        videos = ok_videos(tables["videos"]).select("video_id", "path", "rel_path")
        return partitions_by("video_id", self.recipe.scenes.videos_per_partition, {"videos": videos},
                             previous=self.previous_buckets)

    def setup(self) -> None:
        try:
            import scenedetect  # noqa: F401
        except ImportError as e:
            raise SystemicError(f"scenedetect does not import ({e}); install the project's dependencies") from e

    def process(self, partition: Partition) -> StageResult:
        return StageResult(guarded(partition.data["videos"].to_dicts(), self._detect, self._failed,
                                   lambda v: v["path"]))

    def _detect(self, video: dict) -> list[dict]:
        cfg = self.recipe.scenes
        cuts = detect_cuts(video["path"], cfg.threshold, cfg.min_shot_s) if cfg.detect else []
        return [dict(video_id=video["video_id"], cut_s=cuts, num_shots=len(cuts) + 1, status="ok", error=None)]

    def _failed(self, video: dict, reason: str) -> dict:
        return blank_row("scenes", video_id=video["video_id"], status="failed",
                         error=failure(video["rel_path"], reason))
