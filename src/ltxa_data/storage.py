"""Atomic files and manifest tables on disk.

Invariant: a file with its final name is always complete. Everything is written to a temporary
name in the same folder, fsynced, then renamed over the final name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import SystemicError
from .schemas import SchemaError, conform, empty, upgraded

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Open a temp file beside `path` for binary writing; on success fsync and rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600: a trainer running as another user must read it
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TEMP_GLOB = ".*.tmp"  # what atomic_open leaves behind when a process is killed mid-write


def sweep_temp_files(*roots: Path) -> int:
    """Delete temp files of killed writers under the roots; returns how many."""
    n = 0
    for root in roots:
        if root.exists():
            for p in root.rglob(TEMP_GLOB):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    n += 1
    return n


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock file, or fail at once naming it (two builds of one output would clash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemicError(f"{path}: another build of this recipe is running") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any | None:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic parquet encoding (same table -> same bytes)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=True)
    return buf.getvalue()


def write_table_atomic(path: Path, table: pa.Table) -> None:
    write_bytes_atomic(path, parquet_bytes(table))


def table_path(manifests_dir: Path, name: str) -> Path:
    return manifests_dir / f"{name}.parquet"


def read_table(manifests_dir: Path, name: str) -> pa.Table:
    """A stage's merged table; an error naming the stage to run when it does not exist yet."""
    p = table_path(manifests_dir, name)
    if not p.exists():
        raise FileNotFoundError(f"{p}: table '{name}' has not been built yet (run `ltxa-data build`)")
    try:
        return conform(name, upgraded(name, pq.read_table(p)))
    except SchemaError as e:
        raise SystemicError(f"{p}: written by another version of ltxa_data ({e}): run `ltxa-data build RECIPE` to "
                            "bring the build up to date (only the stages whose tables changed run again)") from e


def read_frame(manifests_dir: Path, name: str, ok_only: bool = False) -> pl.DataFrame:
    """A table as a polars DataFrame, optionally only its `ok` rows."""
    p = table_path(manifests_dir, name)
    df = pl.from_arrow(read_table(manifests_dir, name) if p.exists() else empty(name))
    assert isinstance(df, pl.DataFrame)
    return df.filter(pl.col("status") == "ok") if ok_only else df


def frame_hash(*frames: pl.DataFrame | pa.Table | Any) -> str:
    """Content hash of tables (and plain JSON-able values), for completion markers."""
    h = hashlib.sha256()
    for f in frames:
        if isinstance(f, pl.DataFrame):
            f = f.to_arrow()
        if isinstance(f, pa.Table):
            h.update(b"T")
            h.update(json.dumps(f.schema.names).encode())
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, f.schema) as w:
                w.write_table(f.combine_chunks())
            h.update(sink.getvalue().to_pybytes())
        else:
            h.update(b"J")
            h.update(json.dumps(f, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]



def file_sha256(path: Path, chunk: int = 16 << 20) -> str:
    """Hex sha256 of a file, read in 16 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(chunk):
            h.update(data)
    return h.hexdigest()


def cached_file_sha256(path: Path, cache_dir: Path) -> str:
    """`file_sha256`, remembered in `cache_dir/sha256.json` by absolute path, size and mtime: a
    40 GB checkpoint is hashed once, not on every build and worker."""
    st = path.resolve().stat()
    entry = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = cache_dir / "sha256.json"
    with exclusive_lock(cache_dir / "sha256.lock"):
        cache = read_json(cache_file) or {}
        if entry not in cache:
            cache[entry] = file_sha256(path)
            write_json_atomic(cache_file, cache)
        return str(cache[entry])
