"""Which items a worker is on, so that a worker's death or hang costs those items only.

An executor runs each partition under a `Watch`: a small file that says which items (subjects: a file, a
sample) are in flight. Stages wrap each item in `item(subject)`. When a worker dies, the driver reads the
file to learn what killed it; a subject that killed workers twice comes back in `poison`, and `item` then
raises `ItemKilled` (the item's failed row) instead of running it again. Outside an executor nothing is
written and nothing is poisoned.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ItemKilled(Exception):
    """An item that killed (or hung) its worker before: it becomes a failed row instead of running again."""


class Watch:
    """One partition's in-flight items, mirrored to `path` at every change (no fsync: it only has to
    outlive the worker process, not the machine)."""

    def __init__(self, path: Path | None = None, poison: dict[str, str] | None = None, careful: bool = False) -> None:
        self.path = path
        self.poison = dict(poison or {})
        self.careful = careful
        """Retrying after a death: run one item at a time (no batches, no cutting threads) so that the
        next death names a single item."""
        self.phase = "setup"
        self.started = 0
        self.finished = 0
        self._inflight: dict[int, tuple[str, ...]] = {}
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._write()

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        state = {"phase": self.phase, "started": self.started, "finished": self.finished,
                 "inflight": sorted({s for subjects in self._inflight.values() for s in subjects}),
                 "pid": os.getpid(), "host": socket.gethostname()}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def item(self, *subjects: str) -> Iterator[None]:
        """Run the body as work on `subjects`; raise `ItemKilled` for one that killed workers before."""
        for s in subjects:
            if s in self.poison:
                raise ItemKilled(self.poison[s])
        with self._lock:
            token = next(self._tokens)
            self._inflight[token] = subjects
            self.started += 1
            self._write()
        try:
            yield
        finally:
            with self._lock:
                del self._inflight[token]
                self.finished += 1
                self._write()


_default = Watch()
_shared: dict[str, Watch] = {}


def current() -> Watch:
    """The watch of the partition this worker is running (threads a stage starts share it)."""
    return _shared.get("watch", _default)


@contextlib.contextmanager
def watching(watch: Watch) -> Iterator[Watch]:
    """Make `watch` current for this process (threads a stage starts see it too) while the body runs."""
    _shared["watch"] = watch
    try:
        yield watch
    finally:
        _shared.pop("watch", None)


def item(*subjects: str) -> contextlib.AbstractContextManager[None]:
    """`current().item(...)`: mark the body as work on `subjects`."""
    return current().item(*subjects)


def careful() -> bool:
    """Whether this partition is a retry after a death: batch and thread nothing."""
    return current().careful


def read_watch(path: Path) -> dict[str, Any] | None:
    """A watch file's last state, or None when there is none."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
