"""scenes: hard cuts in each video (PySceneDetect), so that no target window crosses one.

This is the build's one decode of every frame of a video: the same pass computes the picture half of the
video's fingerprint (`analysis.fingerprint.PicturePass`, when `duplicates.detect` is on) and leaves it in
`scenes/part-<key>.arrow` (output.dir), where the fingerprints stage, which runs next, reads it. The pictures are
not in this stage's config hash: turning duplicates on later, or another fingerprint format, costs the fingerprints
stage one decode of its own (`read_picture` refuses a picture of another format) rather than every scene
detection again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from ..analysis.fingerprint import STEP_S, PicturePass
from ..analysis.fingerprint_store import write_pictures
from ..errors import SystemicError
from ..gates import failure
from ..media import MediaError, frame_seconds
from ..schemas import blank_row
from .base import Partition, Stage, StageResult, guarded, partitions_by
from .scan import ok_videos

Tap = Callable[[Any, Any], None]
"""Called with each decoded frame (PyAV) and its stream, in decode order."""


def _small_frame_stream(path: str, tap: Tap | None = None):  # -> scenedetect VideoStream
    """PySceneDetect's PyAV stream, but each frame is scaled by FFmpeg straight from the decoded picture
    to the width PySceneDetect would downscale to (>= 256 px): no full-size BGR frame, no Python resize.
    `tap` sees every decoded frame first."""
    from av.video.reformatter import VideoReformatter
    from scenedetect.backends.pyav import VideoStreamAv
    from scenedetect.scene_manager import compute_downscale_factor

    # One reformatter for the stream: `frame.reformat` makes a scaler per frame, ~1 ms of a 1080p frame's cost.
    small = VideoReformatter()

    class SmallFrames(VideoStreamAv):
        @property
        def frame_size(self) -> tuple[int, int]:
            w, h = super().frame_size
            f = compute_downscale_factor(max(w, h))
            return max(1, round(w / f)), max(1, round(h / f))

        def read(self, decode: bool = True):  # type: ignore[override]
            got = super().read(decode=False)
            if got and tap is not None:
                tap(self._frame, self._video_stream)
            if not got or not decode:
                return got
            w, h = self.frame_size
            return small.reformat(self._frame, width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()

    # suppress_output: else PySceneDetect hands FFmpeg's log to stderr for the whole process (a kept worker then
    # prints every later stage's encoder log).
    return SmallFrames(path, suppress_output=True)


def _content_detector(threshold: float, min_shot_s: float):  # -> scenedetect ContentDetector
    """PySceneDetect's content detector, its frame score computed the same (bit for bit, tests compare) with
    one OpenCV difference of the HSV frames instead of three numpy ones: a third of its cost per frame."""
    import cv2
    from scenedetect import ContentDetector

    class Content(ContentDetector):
        _hsv = None

        def _calculate_frame_score(self, timecode, frame_img):  # type: ignore[override]
            if self._weights.delta_edges > 0.0 or self.stats_manager is not None:
                return super()._calculate_frame_score(timecode, frame_img)
            hsv = cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV)
            last, self._hsv = self._hsv, hsv
            if last is None:
                return 0.0
            pixels = float(hsv.shape[0] * hsv.shape[1])
            hue, sat, lum, _ = cv2.sumElems(cv2.absdiff(hsv, last))  # exact: integer sums < 2**53
            parts = (hue / pixels, sat / pixels, lum / pixels, 0.0)
            return sum(c * w for c, w in zip(parts, self._weights, strict=True)) / sum(abs(w) for w in self._weights)

    return Content(threshold=threshold, min_scene_len=min_shot_s)


class _PictureTap:
    """Feeds a `PicturePass` from the scene detector's decode; its faults are its own (the cuts stand)."""

    def __init__(self, picture: PicturePass) -> None:
        self.picture, self.wanted, self.error = picture, True, None
        self.frame_s: float | None = None

    def __call__(self, frame: Any, stream: Any) -> None:
        if self.wanted:
            try:
                if self.frame_s is None:
                    self.frame_s = frame_seconds(stream)
                self.wanted = self.picture.feed(frame, stream)
            except Exception as e:
                self.wanted, self.error = False, e

    def result(self, decode_failures: int) -> tuple[Any, Any] | None:
        if self.error is not None or decode_failures or self.frame_s is None:
            return None  # the fingerprints stage decodes the picture itself, and says why if it fails
        try:
            return self.picture.result(self.frame_s)
        except Exception:  # the last frames are converted here: whatever fails, the cuts stand
            return None


def detect_cuts(path: str, threshold: float, min_shot_s: float) -> list[float]:
    """Instants (seconds) where a new shot starts, from PySceneDetect's content detector (HSV
    change between consecutive frames, decoded with PyAV on a picture FFmpeg downscales)."""
    return picture_pass(path, 0.0, (threshold, min_shot_s), picture=False)[0]


def picture_pass(path: str, duration_s: float, cuts: tuple[float, float] | None,
                 picture: bool) -> tuple[list[float], tuple[Any, Any] | None]:
    """One decode of a video: (its cuts, with `cuts` = (threshold, min_shot_s), else none; the picture half of
    its fingerprint when `picture`, None when it could not be computed: a decode error, a short stream)."""
    from scenedetect import SceneManager

    tap = _PictureTap(PicturePass(duration_s)) if picture else None
    found: list[float] = []
    try:
        video = _small_frame_stream(path, tap)
        if cuts is not None:
            manager = SceneManager()
            manager.auto_downscale = False  # the stream's frames are small already
            manager.add_detector(_content_detector(*cuts))
            manager.detect_scenes(video=video)
            found = [round(c.get_seconds(), 6) for c in manager.get_cut_list()]
        elif tap is not None:
            while tap.wanted and video.read(decode=False):
                pass
    except Exception as e:  # PySceneDetect wraps decoder errors in its own types
        if cuts is None:
            return found, None
        raise MediaError(f"scene detection failed: {type(e).__name__}: {e}") from None
    # The scene detector skips a frame that does not decode; a fingerprint is not made from such a file here.
    return found, None if tap is None else tap.result(getattr(video, "_decode_failures", 0))


def crosses_cut(start_s: float, last_frame_s: float, cuts: list[float] | None, eps: float = 1e-6) -> bool:
    """Whether a window whose frames are shown from `start_s` to `last_frame_s` shows frames of
    two shots: a cut at or before its first frame, or after its last, does not count."""
    return any(start_s + eps < c <= last_frame_s + eps for c in cuts or [])


class ScenesStage(Stage):
    name = "scenes"
    table = "scenes"
    version = "3"  # 3: the picture half of the fingerprints in the same decode
    reads = ("videos",)
    sections = ("scenes",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        videos = ok_videos(tables["videos"]).select("video_id", "path", "rel_path", "duration_s")
        return partitions_by("video_id", self.recipe.scenes.videos_per_partition, {"videos": videos},
                             previous=self.previous_buckets.get(""))

    def setup(self) -> None:
        try:
            import scenedetect  # noqa: F401
        except ImportError as e:
            raise SystemicError(f"scenedetect does not import ({e}); install the project's dependencies") from e

    def process(self, partition: Partition) -> StageResult:
        pictures: list[tuple[str, float, Any, Any]] = []
        rel = f"scenes/part-{partition.key}.arrow"

        def detect(video: dict) -> list[dict]:
            self.check_unchanged(video)
            cfg = self.recipe.scenes
            cuts, picture = [], None
            if cfg.detect or self.recipe.duplicates.detect:
                cuts, picture = picture_pass(video["path"], video["duration_s"],
                                             (cfg.threshold, cfg.min_shot_s) if cfg.detect else None,
                                             picture=self.recipe.duplicates.detect)
            where = dict(picture_file=None, picture_row=None)
            if picture is not None:
                where = dict(picture_file=rel, picture_row=len(pictures))
                pictures.append((video["video_id"], STEP_S, *picture))
            return [dict(video_id=video["video_id"], cut_s=cuts, num_shots=len(cuts) + 1, **where, status="ok",
                         error=None)]

        rows = guarded(partition.data["videos"].to_dicts(), detect, self._failed, lambda v: v["path"])
        if not pictures:
            return StageResult(rows)
        write_pictures(self.recipe.output_dir / rel, pictures)
        return StageResult(rows, [rel])

    def _failed(self, video: dict, reason: str) -> dict:
        return blank_row("scenes", video_id=video["video_id"], status="failed",
                         error=failure(video["rel_path"], reason))
