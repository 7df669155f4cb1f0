"""The common shape of the targets and references stages: per video, windows where exactly one
identified speaker talks."""

from __future__ import annotations

from abc import abstractmethod

import polars as pl

from ..gates import failure
from ..schemas import TABLES, blank_row
from .base import Partition, Stage, StageResult, guarded, partitions_by
from .duplicates import copies_skipped
from .scan import ok_videos


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


class SpeakerWindowStage(Stage):
    """Plans videos with their ok turns and the identities of their speakers; a video that yields
    no window gets one row saying why."""

    reads = ("videos", "turns", "identities")

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        identities = tables["identities"].filter(pl.col("status") == "ok").select(
            "video_id", "speaker", "voice_id", "identity_id")
        videos = ok_videos(tables["videos"]).filter(
            pl.col("video_id").is_in(identities.get_column("video_id").unique().to_list())
        ).select("video_id", "path", "rel_path", "duration_s", "width", "height")
        if "scenes" in self.reads:  # cuts travel with their video; one whose cuts are unknown is left out
            cuts = tables["scenes"].filter(pl.col("status") == "ok").select("video_id", "cut_s")
            videos = videos.join(cuts, on="video_id", how="inner")
        if "duplicates" in self.reads:  # with duplicates.targets one, the copies that yield no target
            copies = copies_skipped(tables["duplicates"]) if self.recipe.duplicates.targets == "one" else {}
            rel = dict(tables["duplicates"].select("video_id", "rel_path").iter_rows())
            skipped = pl.DataFrame([{"video_id": v, "copy_group": g, "copy_of": rel.get(r, r)}
                                    for v, (g, r) in copies.items()],
                                   schema={"video_id": pl.String, "copy_group": pl.String, "copy_of": pl.String})
            videos = videos.join(skipped, on="video_id", how="left")
        turns = tables["turns"].filter(pl.col("status") == "ok").select(
            "video_id", "speaker", "start_s", "end_s", "overlap")
        return partitions_by("video_id", self.recipe.diarize.videos_per_partition,
                             {"videos": videos, "turns": turns, "identities": identities},
                             previous=self.previous_buckets.get(""))

    def process(self, partition: Partition) -> StageResult:
        turns, ids = partition.data["turns"], partition.data["identities"]
        work = [(v, turns.filter(pl.col("video_id") == v["video_id"]), ids.filter(pl.col("video_id") == v["video_id"]))
                for v in partition.data["videos"].to_dicts()]
        rows = guarded(work, self._checked_windows,
                       lambda item, reason: self.no_window(item[0], "failed", reason), lambda item: item[0]["path"])
        return StageResult(rows)

    def _checked_windows(self, item: tuple[dict, pl.DataFrame, pl.DataFrame]) -> list[dict]:
        self.check_unchanged(item[0])
        return self.windows_of(*item)

    @abstractmethod
    def windows_of(self, video: dict, turns: pl.DataFrame, identities: pl.DataFrame) -> list[dict]:
        """The rows for one video (its turns, and the identities of its local speakers)."""

    def no_window(self, video: dict, status: str, reason: str) -> dict:
        """The one row of a video that yields no window, saying why."""
        key = TABLES[self.table].key[0]
        return blank_row(self.table, **{key: f"{video['video_id']}-none"}, video_id=video["video_id"],
                         status=status, error=failure(video["rel_path"], reason))
