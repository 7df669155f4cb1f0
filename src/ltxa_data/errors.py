"""Errors that stop a run. Input faults are not errors here: they become manifest rows."""

import errno
import sys


class SystemicError(Exception):
    """A fault that is not the input's (missing weights, bad install, out of memory): stops the run."""


def is_out_of_memory(e: BaseException) -> bool:
    """Whether `e` is running out of (GPU or host) memory: torch's error type, or its message."""
    torch = sys.modules.get("torch")  # not loaded: `e` cannot be torch's
    return (torch is not None and isinstance(e, torch.OutOfMemoryError)) or "out of memory" in str(e).lower()


class DiskFullError(SystemicError):
    """The disk a build writes to is full: stops the run without blaming the item in flight."""


def is_disk_full(e: BaseException) -> bool:
    """Whether `e` is a write that found no space left (a full disk, or a quota reached)."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
