"""Target clips: the mp4 of each kept target window, cut and encoded by the targets stage from its own decode of
the window, exactly as the shard stage would cut and encode it, and left in `targets/part-<key>.arrow`
(output.dir). The shard stage takes a clip instead of decoding the window a second time (and, with latents,
instead of encoding the mp4 again); one whose making differs from what the shard would make now (another crop,
size, pad or crf, a file gone) is ignored and the shard cuts the window itself. The clips are not in the targets
stage's config hash: a new `shard.video_crf` costs the shard stage its own decode, not every face analysis."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa

from ..storage import write_bytes_atomic

CLIPS_SCHEMA = pa.schema([
    pa.field("video_id", pa.string()), pa.field("target_id", pa.string()), pa.field("start_frame", pa.int64()),
    pa.field("crop", pa.list_(pa.int64())), pa.field("size", pa.int64()), pa.field("pad", pa.string()),
    pa.field("crf", pa.int64()), pa.field("mp4", pa.binary()),
])
"""Columns of a clip file: what the clip is of and how it was made (`making`), and its bytes."""

MAKING = ("target_id", "start_frame", "crop", "size", "pad", "crf")
"""What decides a clip's bytes: a clip serves a sample only where all of these agree."""


def making(target_id: str, start_frame: int, crop: list[int] | tuple[int, ...], size: int, pad: str,
           crf: int) -> dict:
    """The `MAKING` fields of a clip, as stored and compared."""
    return dict(target_id=target_id, start_frame=int(start_frame), crop=[int(c) for c in crop], size=int(size),
                pad=pad, crf=int(crf))


def write_clips(dest: Path, clips: list[dict]) -> None:
    """One clip file holding `clips` (rows of `CLIPS_SCHEMA`), in this order, written atomically."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, CLIPS_SCHEMA) as writer:
        writer.write_table(pa.Table.from_pylist(clips, schema=CLIPS_SCHEMA))
    write_bytes_atomic(dest, sink.getvalue().to_pybytes())


class ClipReader:
    """Clips by file and target from memory-mapped clip files, each opened once; safe to share between threads.
    A clip is found by its target, not its row: a file rewritten without another video's clips (a take-down)
    still names the same clips."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.opened: dict[str, tuple[pa.Table, dict[str, int]] | None] = {}
        self.lock = threading.Lock()

    def _table(self, file: str) -> tuple[pa.Table, dict[str, int]] | None:
        with self.lock:
            if file not in self.opened:
                try:
                    table = pa.ipc.open_file(pa.memory_map(str(self.output_dir / file))).read_all()
                    self.opened[file] = table, {t: i for i, t in enumerate(table.column("target_id").to_pylist())}
                except (OSError, pa.ArrowException, KeyError):
                    self.opened[file] = None
            return self.opened[file]

    def get(self, file: str | None, want: dict) -> bytes | None:
        """The mp4 of target `want["target_id"]` in clip `file` if it was made as `want` (`making`) says; else None
        (the caller cuts the window itself)."""
        found = None if file is None else self._table(file)
        if found is None or want["target_id"] not in found[1]:
            return None
        table, row = found[0], found[1][want["target_id"]]
        if any(table.column(name)[row].as_py() != want[name] for name in MAKING):
            return None
        return table.column("mp4")[row].as_py()
