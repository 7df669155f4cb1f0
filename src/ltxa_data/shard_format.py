"""The shard format: webdataset tar files, the one module that opens a tar.

A sample is a run of members `{key}.{ext}` (ext: `json`, `mp4`, `wav`, `ref0.wav`, `latents.pth`, ...; see
`stages.shard`). The shards table indexes each sample by tar, byte offset of its first header and bytes, so a
sample is read without scanning its tar (`read_members`, `read_sample`). Tars are written under a temporary
name and renamed when complete; member headers are normalised (mtime 0, owner 0) so the same samples give the
same bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .storage import atomic_open

ShardError = tarfile.TarError
"""What a broken or truncated tar raises (with OSError for the file itself)."""

TAR_BLOCK = 512
REUSE_DIR = ".shards-reuse"
"""Under output.dir: hard links to the tars a running shard stage copies unchanged samples from."""


@dataclass
class Placement:
    shard: str
    offset: int
    nbytes: int
    members: list[str]


class ShardWriter:
    """Writes `{prefix}-{sub:02d}.tar` files, rolling over past `max_bytes`. Each tar is written
    under a temporary name and renamed when complete, so a final name is never a partial tar.
    Member headers are normalised (mtime 0, owner 0) so the same samples give the same bytes."""

    def __init__(self, root: Path, prefix: str, max_bytes: int) -> None:
        self.root, self.prefix, self.max_bytes = root, prefix, max_bytes
        self.outputs: list[str] = []
        self._stack: contextlib.ExitStack | None = None
        self._tar: tarfile.TarFile | None = None
        self._count = 0

    def _rel(self) -> str:
        return f"{self.prefix}-{len(self.outputs):02d}.tar"

    def _open(self) -> None:
        self._stack = contextlib.ExitStack()
        f = self._stack.enter_context(atomic_open(self.root / self._rel()))
        # Closed in _commit: a tar outlives this call, it spans many add() calls.
        self._tar = tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        self._count = 0

    def _commit(self) -> None:
        assert self._tar is not None and self._stack is not None
        self._tar.close()
        self._stack.close()
        self.outputs.append(self._rel())
        self._tar = self._stack = None

    def add(self, key: str, members: dict[str, bytes]) -> Placement:
        size = sum(TAR_BLOCK + -(-len(b) // TAR_BLOCK) * TAR_BLOCK for b in members.values())
        if self._tar is not None and self._count and self._tar.offset + size > self.max_bytes:
            self._commit()
        if self._tar is None:
            self._open()
        assert self._tar is not None
        start = self._tar.offset
        names = []
        for ext, data in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
            names.append(info.name)
        self._count += 1
        return Placement(self._rel(), start, self._tar.offset - start, names)

    def close(self) -> list[str]:
        if self._tar is not None:
            self._commit()
        return self.outputs

    def abort(self) -> None:
        if self._stack is not None:
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
            self._tar = self._stack = None


def read_members(path: Path, offset: int, nbytes: int) -> dict[str, bytes]:
    """One sample's tar members {name: bytes}, read by byte offset (the shards index); a short read or a
    broken header raises `tarfile.ReadError`."""
    with open(path, "rb") as f:
        f.seek(offset)
        chunk = f.read(nbytes)
    if len(chunk) != nbytes:
        raise tarfile.ReadError(f"{path}: {nbytes} bytes at {offset} asked, {len(chunk)} read")
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(chunk), mode="r:") as tar:
        for m in tar:
            data = tar.extractfile(m)
            if data is not None:
                out[m.name] = data.read()
    return out


def iter_shard(path: Path, with_data: bool = True) -> Iterator[tuple[str, int, dict[str, tuple[str, bytes]]]]:
    """(webdataset key, first header offset, {member: (extension, bytes)}) per run of one key's
    members in a tar, streaming. Without data, members are still read through (a truncated tar
    fails) but not kept."""
    key: str | None = None
    offset, files = 0, {}
    with tarfile.open(path, "r") as tar:
        for m in tar:
            if not m.isfile():
                continue
            k, _, ext = m.name.rsplit("/", 1)[-1].partition(".")
            if k != key:
                if key is not None:
                    yield key, offset, files
                key, offset, files = k, m.offset, {}
            f = tar.extractfile(m)
            assert f is not None
            data = f.read()
            if len(data) != m.size:
                raise tarfile.ReadError(f"member {m.name} is truncated")
            files[m.name] = (ext, data if with_data else b"")
    if key is not None:
        yield key, offset, files


def read_shard(path: Path, with_data: bool = True) -> dict[str, dict]:
    """Samples of a tar by webdataset key: first header offset and {member: (extension, bytes)}.
    Without data, members are still read through (a truncated tar fails) but not kept."""
    samples: dict[str, dict] = {}
    for key, offset, files in iter_shard(path, with_data):
        samples.setdefault(key, {"offset": offset, "files": {}})["files"].update(files)
    return samples


def read_sample(shards_dir: Path, shard: str, offset: int, nbytes: int) -> dict[str, bytes]:
    """One sample's members {extension: bytes}, read from its tar by byte offset (the shards index)."""
    return {name.rsplit("/", 1)[-1].partition(".")[2]: data
            for name, data in read_members(shards_dir / shard, offset, nbytes).items()}


def sample_json(path: Path, offset: int, nbytes: int, key: str) -> dict | None:
    """The json (`{key}.json`) of the sample at this place, None when it holds none or cannot be read."""
    try:
        data = read_members(path, offset, nbytes).get(f"{key}.json")
        return json.loads(data) if data is not None else None
    except (OSError, ShardError, json.JSONDecodeError):
        return None


def iter_sample_jsons(path: Path) -> Iterator[tuple[str, dict | None]]:
    """(member name, its parsed json for a sample's `{key}.json`, else None) of every member of a tar."""
    with tarfile.open(path) as tf:
        for member in tf:
            meta = None
            if member.name.endswith(".json") and member.name.count(".") == 1:
                f = tf.extractfile(member)
                meta = json.loads(f.read()) if f else {}
            yield member.name, meta
