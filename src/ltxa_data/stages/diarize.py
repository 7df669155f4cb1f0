"""diarize: who speaks when in each video (turns with local speaker labels and an overlap flag)."""

from __future__ import annotations

import polars as pl

from ..backends import load_diarizer
from ..backends.base import Diarizer
from ..gates import failure
from ..ids import child_id
from ..media import read_audio
from ..recipe import AUDIO_SAMPLE_RATE
from ..schemas import TURNS
from .base import Partition, Stage, StageResult, guarded, partitions_by
from .scan import ok_videos


class DiarizeStage(Stage):
    name = "diarize"
    table = "turns"
    version = "2"
    reads = ("videos",)
    sections = ("diarize",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        videos = ok_videos(tables["videos"]).select("video_id", "path", "rel_path", "duration_s")
        return partitions_by("video_id", self.recipe.diarize.videos_per_partition, {"videos": videos},
                             previous=self.previous_buckets.get(""))

    def devices(self) -> list[str]:
        return [self.recipe.diarize.pyannote.device] if self.recipe.diarize.backend == "pyannote" else []

    def setup(self) -> None:
        self.diarizer: Diarizer = load_diarizer(self.recipe)

    def process(self, partition: Partition) -> StageResult:
        videos = partition.data["videos"].to_dicts()
        return StageResult(guarded(videos, self._diarize_one, self._failed, lambda v: v["path"]))

    def _failed(self, video: dict, reason: str) -> dict:
        return _row(video["video_id"], "", 0.0, 0.0, False, "failed", failure(video["rel_path"], reason))

    def _diarize_one(self, video: dict) -> list[dict]:
        self.check_unchanged(video)
        # Only the audio under the picture: an audio track that outlasts the video has no face to pair with.
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=1, duration_s=video["duration_s"])[0]
        turns = self.diarizer(audio, AUDIO_SAMPLE_RATE)
        if not turns:
            return [_row(video["video_id"], "", 0.0, 0.0, False, "skipped",
                         failure(video["rel_path"], "no speech detected"))]
        return [_row(video["video_id"], t.speaker, t.start, t.end, t.overlap, "ok", None) for t in turns]


def _row(video_id: str, speaker: str, start: float, end: float, overlap: bool, status: str, error: str | None) -> dict:
    turn_id = child_id(video_id, speaker or "none", start)
    row = dict(turn_id=turn_id, video_id=video_id, speaker=speaker, start_s=start, end_s=end, overlap=overlap,
               status=status, error=error)
    assert list(row) == TURNS.columns
    return row
