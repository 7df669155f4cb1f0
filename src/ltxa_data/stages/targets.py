"""targets: 121-frame windows on the 25 fps grid where one identified speaker talks, and their crop."""

from __future__ import annotations

import math

import polars as pl

from ..ids import child_id
from ..recipe import TARGET_FPS, TARGET_FRAMES
from ..schemas import blank_row
from ..windows import single_speaker_windows
from .base import Partition, Stage, StageResult, failure, guarded, partitions_by
from .scan import ok_videos

TARGET_SECONDS = TARGET_FRAMES / TARGET_FPS


def speaker_inputs(tables: dict[str, pl.DataFrame], per_partition: int) -> list[Partition]:
    """Partitions of videos with their ok turns and the identities of their speakers."""
    identities = tables["identities"].filter(pl.col("status") == "ok").select(
        "video_id", "speaker", "voice_id", "identity_id")
    videos = ok_videos(tables["videos"]).filter(
        pl.col("video_id").is_in(identities.get_column("video_id").unique().to_list())
    ).select("video_id", "path", "rel_path", "duration_s", "width", "height")
    turns = tables["turns"].filter(pl.col("status") == "ok").select("video_id", "speaker", "start_s", "end_s",
                                                                      "overlap")
    return partitions_by("video_id", per_partition,
                         {"videos": videos, "turns": turns, "identities": identities})


def speaker_spans(turns: pl.DataFrame, speaker: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(the speaker's clean speech, everyone else's speech including any overlapped stretch)."""
    own, others = [], []
    for t in turns.iter_rows(named=True):
        span = (t["start_s"], t["end_s"])
        if t["speaker"] == speaker and not t["overlap"]:
            own.append(span)
        else:
            others.append(span)
    return own, others


def center_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


class TargetsStage(Stage):
    name = "targets"
    reads = ("videos", "turns", "identities")
    sections = ("targets",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        return speaker_inputs(tables, self.recipe.diarize.videos_per_partition)

    def process(self, partition: Partition) -> StageResult:
        turns, ids = partition.data["turns"], partition.data["identities"]
        work = [(v, turns.filter(pl.col("video_id") == v["video_id"]), ids.filter(pl.col("video_id") == v["video_id"]))
                for v in partition.data["videos"].to_dicts()]
        return StageResult(list(guarded(work, self._targets_of, self._failed)))

    def _failed(self, item: tuple, reason: str) -> dict:
        return _skip_row(item[0], "failed", reason)

    def _targets_of(self, item: tuple) -> list[dict]:
        video, turns, ids = item
        cfg = self.recipe.targets
        last_start = math.floor(video["duration_s"] * TARGET_FPS + 1e-6) - TARGET_FRAMES
        if last_start < 0:
            return [_skip_row(video, "skipped", f"shorter than a {TARGET_SECONDS:.2f} s target "
                              f"({video['duration_s']:.2f} s)")]
        crop = center_square(video["width"], video["height"])
        rows = []
        for ident in ids.sort("speaker").iter_rows(named=True):
            own, others = speaker_spans(turns, ident["speaker"])
            starts = [f / TARGET_FPS for f in range(0, last_start + 1, cfg.stride_frames)]
            for w in single_speaker_windows(own, others, starts, TARGET_SECONDS, cfg.min_speech_ratio,
                                            cfg.max_other_speech_s, cfg.max_per_video):
                frame = round(w.start * TARGET_FPS)
                rows.append(dict(
                    target_id=child_id(video["video_id"], ident["speaker"], frame / TARGET_FPS),
                    video_id=video["video_id"], voice_id=ident["voice_id"], identity_id=ident["identity_id"],
                    start_frame=frame, start_s=frame / TARGET_FPS, num_frames=TARGET_FRAMES,
                    duration_s=TARGET_SECONDS, crop_x=crop[0], crop_y=crop[1], crop_w=crop[2], crop_h=crop[3],
                    speech_ratio=w.speech_ratio, status="ok", error=None))
        rows = sorted(rows, key=lambda r: (-r["speech_ratio"], r["start_frame"]))[: cfg.max_per_video]
        if not rows:
            return [_skip_row(video, "skipped", f"no {TARGET_SECONDS:.2f} s window where one speaker talks "
                              f"≥ {cfg.min_speech_ratio:.0%} and nobody else more than {cfg.max_other_speech_s} s")]
        return rows


def _skip_row(video: dict, status: str, reason: str) -> dict:
    return blank_row("targets", target_id=f"{video['video_id']}-none", video_id=video["video_id"], status=status,
                     error=failure(video["rel_path"], reason))
