"""Deterministic ids: from content for videos, from the parent id and times for everything else."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def content_fingerprint(path: Path, sample_bytes: int) -> str:
    """sha256 of the size and `sample_bytes` read at the start, middle and end of the file.

    Sampling keeps a scan of a million large files cheap; it still separates re-encodes, trims and
    different files of equal size.
    """
    size = path.stat().st_size
    h = hashlib.sha256(f"size={size};".encode())
    with open(path, "rb") as f:
        if size <= 3 * sample_bytes:
            h.update(f.read())
        else:
            for off in (0, (size - sample_bytes) // 2, size - sample_bytes):
                f.seek(off, os.SEEK_SET)
                h.update(f.read(sample_bytes))
    return h.hexdigest()


def video_id_of(fingerprint: str) -> str:
    return fingerprint[:16]


def child_id(parent: str, speaker: str, start_s: float) -> str:
    """`{parent}-{speaker}-{start_ms:09d}`: ids of turns, targets and references."""
    return f"{parent}-{speaker}-{round(start_s * 1000):09d}"


def short_hash(*parts: object, n: int = 12) -> str:
    # surrogateescape: file names that are not valid UTF-8 still hash (to their raw bytes).
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8", "surrogateescape")).hexdigest()[:n]


def unit_interval(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (stable across runs and machines)."""
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:15], 16) / 16**15
