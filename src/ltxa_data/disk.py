"""Disk space: what a build still has to write, what the disks holding its output have free, and the message a
full disk gets.

A build's bulk is its shards. What remains to write is estimated as (samples not yet in shards) x (bytes per
sample): the mean of the build's own shard index once it has 8 samples, else the recipe's arithmetic (exact wav
sizes, the mp4 at `REAL_MP4_BYTES_AT_512` for the crf, latents and masks). Before targets are cut the count of
samples is unknown, and nothing is refused.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .errors import DiskFullError
from .recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, Recipe
from .storage import table_path

REAL_MP4_BYTES_AT_512 = 3_000_000
"""A 121-frame 512x512 target at x264 crf 18 from real footage, rounded up (drawn faces take ~40 KB): the
fallback before a build has shards of its own."""
MARGIN = 1.1
"""Preflight refuses when free space is under this times the estimate."""


def gib(n: float) -> str:
    """A size as a person reads it: GiB from 1 GiB, else MiB."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _existing(path: Path) -> Path:
    """`path`, or its nearest folder that exists (an output folder not made yet)."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    return p


def free_bytes(path: Path) -> int:
    """Free bytes on the disk that holds `path`."""
    return shutil.disk_usage(_existing(path)).free


def _ok_shards(recipe: Recipe) -> pl.DataFrame | None:
    """The shard index's written samples (key, nbytes), or None before the first shard."""
    path = table_path(recipe.manifests_dir, "shards")
    if not path.exists():
        return None
    return pl.read_parquet(path, columns=["key", "nbytes", "status"]).filter(pl.col("status") == "ok")


def sample_bytes(recipe: Recipe, shards: pl.DataFrame | None) -> tuple[int, str]:
    """(bytes of one sample, how it was found): the mean of the build's written samples (`_ok_shards`), or the
    recipe's arithmetic."""
    if shards is not None and shards.height >= 8:
        return int(shards["nbytes"].mean() or 0), f"the mean of this build's {shards.height} samples"
    k = recipe.pairs.references_per_target
    wavs = 2 * 2 * (TARGET_FRAMES * AUDIO_SAMPLE_RATE // TARGET_FPS) + k * 2 * 2 * round(
        recipe.references.duration_s * AUDIO_SAMPLE_RATE)
    pixels = (recipe.targets.size / 512) ** 2
    mp4 = REAL_MP4_BYTES_AT_512 * pixels * 2 ** ((18 - recipe.shard.video_crf) / 6)
    latents = 0 if recipe.encode.backend == "none" else 128 * 16 * 16 * 16 * 2 * pixels + (1 + k) * 8 * 200 * 16 * 4
    return int(wavs + mp4 + latents + 64_000), "the recipe's sizes (real footage at its crf)"


@dataclass(frozen=True)
class SpaceNeed:
    samples: int
    per_sample: int
    how: str

    @property
    def bytes(self) -> int:
        return self.samples * self.per_sample


def space_needed(recipe: Recipe) -> SpaceNeed | None:
    """What the shard stage still has to write, or None before targets are cut."""
    m = recipe.manifests_dir
    shards = _ok_shards(recipe)
    done = set(shards["key"].to_list()) if shards is not None else set()
    for table, key in (("pairs", "key"), ("targets", "target_id")):
        if table_path(m, table).exists():
            rows = pl.read_parquet(table_path(m, table), columns=[key, "status"]).filter(pl.col("status") == "ok")
            return SpaceNeed(len(set(rows[key].to_list()) - done), *sample_bytes(recipe, shards))
    return None


def _where(recipe: Recipe) -> list[Path]:
    """The build's output folders, one per disk."""
    seen, out = set(), []
    for p in (recipe.output_dir, recipe.manifests_dir):
        dev = os.stat(_existing(p)).st_dev
        if dev not in seen:
            seen.add(dev)
            out.append(Path(p))
    return out


def space_problems(recipe: Recipe) -> list[str]:
    """Preflight: a build whose remaining samples clearly do not fit on the output disk, with the numbers."""
    need = space_needed(recipe)
    if need is None or need.samples == 0:
        return []
    free = free_bytes(recipe.output_dir)
    if free >= MARGIN * need.bytes:
        return []
    return [f"output.dir {recipe.output_dir}: {gib(free)} free, and the shards still to write take about "
            f"{gib(need.bytes)} ({need.samples} samples x {need.per_sample / 1e6:.2f} MB, {need.how}): free "
            f"{gib(MARGIN * need.bytes - free)} there or set output.dir to a larger disk"]


def space_lines(recipe: Recipe) -> list[str]:
    """`status`'s line: free space next to what remains to write."""
    need = space_needed(recipe)
    free = ", ".join(f"{gib(free_bytes(p))} free at {p}" for p in _where(recipe))
    if need is None:
        return [f"disk: {free}; what remains to write is known once targets are cut"]
    return [f"disk: {free}; still to write: about {gib(need.bytes)} ({need.samples} samples x "
            f"{need.per_sample / 1e6:.2f} MB, {need.how})"]


def disk_full_error(recipe: Recipe, cause: BaseException) -> DiskFullError:
    """The message of a build that ran out of disk: which folders, how full, what remains, what to do."""
    need = space_needed(recipe)
    free = ", ".join(f"{p} has {gib(free_bytes(p))} free" for p in _where(recipe))
    left = (f"; the shards still to write take about {gib(need.bytes)} ({need.samples} samples)"
            if need is not None and need.samples else "")
    return DiskFullError(f"the disk is full ({cause}): {free}{left}. Free space there, or move output.dir (and "
                         "output.manifests) to a larger disk, then run the same build again: finished partitions "
                         "are kept, nothing under a final name is truncated, and it resumes where it stopped")
