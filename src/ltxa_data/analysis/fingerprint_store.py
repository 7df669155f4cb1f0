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
from .fingerprint import FINGERPRINT_FIELDS, PICTURE_TERMS, SCALES, VECTOR_DIM, VERSION, Fingerprint

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


PICTURES_SCHEMA = pa.schema([pa.field("video_id", pa.string()), pa.field("fp_version", pa.int64()),
                             pa.field("fp_step_s", pa.float64()), pa.field("fp_picture", pa.list_(pa.uint64())),
                             pa.field("fp_low", pa.list_(pa.float32()))])
"""Columns of a picture file: the picture half of fingerprints (`PicturePass`), written by the scenes stage's
one decode of each video and read by the fingerprints stage, which adds the sound."""


def write_pictures(dest: Path, pictures: list[tuple[str, float, np.ndarray, np.ndarray]]) -> None:
    """One picture file holding (video_id, step_s, hashes, low DCT terms) rows, in this order, written atomically."""
    rows = [{"video_id": vid, "fp_version": VERSION, "fp_step_s": step, "fp_picture": hashes.ravel().tolist(),
             "fp_low": low.ravel().tolist()} for vid, step, hashes, low in pictures]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, PICTURES_SCHEMA) as writer:
        writer.write_table(pa.Table.from_pylist(rows, schema=PICTURES_SCHEMA))
    write_bytes_atomic(dest, sink.getvalue().to_pybytes())


def read_picture(output_dir: Path, file: str, row: int, video_id: str, step_s: float,
                 opened: dict[str, pa.Table] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(hashes, low DCT terms) of `video_id` at `row` of picture `file`; None when the file is gone or holds
    something else there (another video, version or grid): the caller decodes the picture itself. `opened`
    keeps the files memory-mapped so far, for the other videos of a file."""
    opened = {} if opened is None else opened
    try:
        if file not in opened:
            opened[file] = pa.ipc.open_file(pa.memory_map(str(output_dir / file))).read_all()
        table = opened[file]
        if not 0 <= row < table.num_rows:
            return None
        r = {name: table.column(name)[row].as_py() for name in ("video_id", "fp_version", "fp_step_s")}
        if (r["video_id"], r["fp_version"], r["fp_step_s"]) != (video_id, VERSION, step_s):
            return None
        hashes = table.column("fp_picture")[row].values.to_numpy(zero_copy_only=False).astype(np.uint64)
        low = table.column("fp_low")[row].values.to_numpy(zero_copy_only=False).astype(np.float32)
    except (OSError, pa.ArrowException):
        return None
    steps = len(hashes) // len(SCALES)
    if low.size != steps * PICTURE_TERMS**2:
        return None
    return hashes.reshape(steps, len(SCALES)), low.reshape(steps, PICTURE_TERMS, PICTURE_TERMS)
