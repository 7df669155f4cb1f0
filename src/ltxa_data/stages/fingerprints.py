"""fingerprints: a perceptual fingerprint of each video's picture and sound (`ltxa_data.fingerprint`),
so that the duplicates stage can find copies of one clip.

The hashes of a partition's videos go to one Arrow IPC file (`fingerprints/part-<key>.arrow` in
output.dir), which the duplicates stage memory-maps: the table itself stays small (a row per video: where
its hashes are), and a million videos' hashes never have to be in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..analysis.fingerprint import FINGERPRINT_FIELDS, SCALES, VECTOR_DIM, VERSION, Fingerprint, video_fingerprint
from ..schemas import blank_row
from ..storage import frame_hash, write_bytes_atomic
from .base import Partition, Stage, StageResult, failure, guarded, partitions_by
from .scan import ok_videos

HASHES_SCHEMA = pa.schema([pa.field("video_id", pa.string())] + [pa.field(n, t) for n, t, _ in FINGERPRINT_FIELDS])
"""Columns of a partition's hash file."""


class FingerprintsStage(Stage):
    name = "fingerprints"
    version = "1"
    reads = ("videos",)
    sections = ("duplicates",)

    def config_hash(self) -> str:
        # Only what changes a fingerprint: the thresholds and the search are the duplicates stage's.
        return frame_hash(self.name, self.version, VERSION, self.recipe.duplicates.detect)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        if not self.recipe.duplicates.detect:
            return []
        videos = ok_videos(tables["videos"]).select("video_id", "path", "rel_path", "duration_s", "audio_codec")
        return partitions_by("video_id", self.recipe.duplicates.videos_per_partition, {"videos": videos},
                             previous=self.previous_buckets)

    def process(self, partition: Partition) -> StageResult:
        prints: list[tuple[str, Fingerprint]] = []

        def one(video: dict) -> list[dict]:
            fp = video_fingerprint(video["path"], duration_s=video["duration_s"],
                                   has_audio=video["audio_codec"] is not None)
            prints.append((video["video_id"], fp))
            return []

        failed = guarded(partition.data["videos"].to_dicts(), one, self._failed, lambda v: v["path"])
        rel = f"fingerprints/part-{partition.key}.arrow"
        rows = [dict(video_id=vid, steps=len(fp.picture), windows=len(fp.vectors),
                     has_sound=fp.sound is not None and bool(fp.sound.any()), file=rel, row=i, status="ok",
                     error=None) for i, (vid, fp) in enumerate(prints)]
        table = pa.Table.from_pylist([{"video_id": vid, **fp.to_row()} for vid, fp in prints], schema=HASHES_SCHEMA)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, HASHES_SCHEMA) as writer:
            writer.write_table(table)
        write_bytes_atomic(self.recipe.output_dir / rel, sink.getvalue().to_pybytes())
        return StageResult(rows + failed, [rel])

    def _failed(self, video: dict, reason: str) -> dict:
        return blank_row("fingerprints", video_id=video["video_id"], status="failed",
                         error=failure(video["rel_path"], reason))


class StoredFingerprints(Sequence[Fingerprint]):
    """The fingerprints of `rows` (of the fingerprints table: file, row) read from their memory-mapped hash
    files on demand; `vectors()` gives every candidate vector at once."""

    def __init__(self, output_dir: Path, rows: pl.DataFrame) -> None:
        self.files = sorted(set(rows.get_column("file").to_list()))
        index = {f: i for i, f in enumerate(self.files)}
        self.tables = [pa.ipc.open_file(pa.memory_map(str(output_dir / f))).read_all() for f in self.files]
        self.where = [(index[f], r) for f, r in rows.select("file", "row").iter_rows()]

    def __len__(self) -> int:
        return len(self.where)

    def __getitem__(self, i):  # type: ignore[override]
        t, r = self.where[i]
        table = self.tables[t]

        def values(name: str) -> np.ndarray | None:
            cell = table.column(name)[r]
            return None if not cell.is_valid else cell.values.to_numpy(zero_copy_only=False)

        if table.column("fp_version")[r].as_py() != VERSION:
            raise ValueError(f"fingerprint version {table.column('fp_version')[r].as_py()}, this code reads "
                             f"{VERSION}")
        picture, sound, vectors = values("fp_picture"), values("fp_sound"), values("fp_vectors")
        assert picture is not None and vectors is not None
        return Fingerprint(step_s=table.column("fp_step_s")[r].as_py(),
                           picture=picture.astype(np.uint64).reshape(-1, len(SCALES)),
                           sound=None if sound is None else sound.astype(np.uint32),
                           vectors=vectors.astype(np.float32).reshape(-1, VECTOR_DIM))

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(every window vector float32 [windows, VECTOR_DIM], the index of its video in this sequence)."""
        per_file: list[tuple[np.ndarray, np.ndarray]] = []
        for table in self.tables:
            col = table.column("fp_vectors").combine_chunks()
            flat = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.float32)
            lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False) // VECTOR_DIM
            per_file.append((flat.reshape(-1, VECTOR_DIM), np.concatenate([[0], np.cumsum(lengths)])))
        vecs, owners = [], []
        for i, (t, r) in enumerate(self.where):
            flat, bounds = per_file[t]
            vecs.append(flat[bounds[r] : bounds[r + 1]])
            owners.append(np.full(bounds[r + 1] - bounds[r], i, np.int64))
        if not vecs:
            return np.zeros((0, VECTOR_DIM), np.float32), np.zeros(0, np.int64)
        return np.concatenate(vecs), np.concatenate(owners)
