"""The fingerprints' hash files: one Arrow IPC file per fingerprints partition (a row per video: its
`fp_*` columns), written once and memory-mapped by whoever reads them (the duplicates stage, a take-down).
The fingerprints table keeps where each video's hashes are (file, row)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..storage import write_bytes_atomic
from .fingerprint import FINGERPRINT_FIELDS, SCALES, VECTOR_DIM, VERSION, Fingerprint

HASHES_SCHEMA = pa.schema([pa.field("video_id", pa.string())] + [pa.field(n, t) for n, t, _ in FINGERPRINT_FIELDS])
"""Columns of a partition's hash file."""


def write_fingerprints(dest: Path, prints: list[tuple[str, Fingerprint]]) -> None:
    """One hash file holding (video_id, fingerprint) rows, in this order, written atomically."""
    table = pa.Table.from_pylist([{"video_id": vid, **fp.to_row()} for vid, fp in prints], schema=HASHES_SCHEMA)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, HASHES_SCHEMA) as writer:
        writer.write_table(table)
    write_bytes_atomic(dest, sink.getvalue().to_pybytes())


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
