"""fingerprints: a perceptual fingerprint of each video's picture and sound (`analysis.fingerprint`),
so that the duplicates stage can find copies of one clip.

The picture half comes from the scenes stage's decode of the video (its `picture_file`); only a video whose
picture that pass could not compute is decoded here again (and fails here with the reason if it cannot be).

The hashes of a partition's videos go to one Arrow IPC file (`fingerprints/part-<key>.arrow` in output.dir,
`analysis.fingerprint_store`), which the duplicates stage memory-maps: the table itself stays small (a row per
video: where its hashes are), and a million videos' hashes never have to be in memory at once.
"""

from __future__ import annotations

import polars as pl

from ..analysis.fingerprint import STEP_S, VERSION, Fingerprint, video_fingerprint
from ..analysis.fingerprint_store import read_picture, write_fingerprints
from ..gates import failure
from ..schemas import blank_row
from ..storage import frame_hash
from .base import Partition, Stage, StageResult, guarded, partitions_by
from .scan import ok_videos


class FingerprintsStage(Stage):
    name = "fingerprints"
    table = "fingerprints"
    version = "1"
    reads = ("videos", "scenes")
    sections = ("duplicates",)

    def config_hash(self) -> str:
        # Only what changes a fingerprint: the thresholds and the search are the duplicates stage's.
        return frame_hash(self.table, self.version, VERSION, self.recipe.duplicates.detect)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        if not self.recipe.duplicates.detect:
            return []
        videos = ok_videos(tables["videos"]).select("video_id", "path", "rel_path", "duration_s", "audio_codec")
        pictures = tables["scenes"].filter(pl.col("status") == "ok").select("video_id", "picture_file", "picture_row")
        videos = videos.join(pictures, on="video_id", how="left")
        return partitions_by("video_id", self.recipe.duplicates.videos_per_partition, {"videos": videos},
                             previous=self.previous_buckets.get(""))

    def process(self, partition: Partition) -> StageResult:
        prints: list[tuple[str, Fingerprint]] = []
        opened: dict = {}  # a scenes partition's picture file serves all its videos here

        def one(video: dict) -> list[dict]:
            self.check_unchanged(video)
            picture = None if video["picture_file"] is None else read_picture(
                self.recipe.output_dir, video["picture_file"], video["picture_row"], video["video_id"], STEP_S,
                opened)
            fp = video_fingerprint(video["path"], duration_s=video["duration_s"],
                                   has_audio=video["audio_codec"] is not None, picture=picture)
            prints.append((video["video_id"], fp))
            return []

        failed = guarded(partition.data["videos"].to_dicts(), one, self._failed, lambda v: v["path"])
        rel = f"fingerprints/part-{partition.key}.arrow"
        rows = [dict(video_id=vid, steps=len(fp.picture), windows=len(fp.vectors),
                     has_sound=fp.sound is not None and bool(fp.sound.any()), file=rel, row=i, status="ok",
                     error=None) for i, (vid, fp) in enumerate(prints)]
        write_fingerprints(self.recipe.output_dir / rel, prints)
        return StageResult(rows + failed, [rel])

    def _failed(self, video: dict, reason: str) -> dict:
        return blank_row("fingerprints", video_id=video["video_id"], status="failed",
                         error=failure(video["rel_path"], reason))
