"""Feed a build's latent shards to training: a webdataset pipeline for a torch `DataLoader` with workers.

    from ltxa_data.ltx.loader import latent_loader
    loader = latent_loader("recipes/talking_heads.yaml", split="train", batch_size=4, num_workers=4,
                           epoch=0, start_step=0)
    for batch in loader:  # batch["video_latents"]["latents"]: bf16 [4, 128, 16, 16, 16], ...

Each sample is the trainer's dicts, keyed as ltx-trainer's `PrecomputedDataset` names its sources:
`video_latents`, `audio_latents`, `reference_audio_latents` (and `conditions` when a conditions file
is given), plus `key` and `meta` (the sample's json). The reference is the stack [K, 8, T, 16] with
`variants` = K, or with `references="first"` reference 0 alone [8, T, 16] (the upstream trainer's shape).

Order is a pure function of (seed, epoch, rank, world size, workers, batch size): the shards are
shuffled per epoch into one stream, each (rank, worker) slot takes an equal contiguous range of it
(whole batches; fewer than slots x batch size samples are left over, different ones each epoch),
and samples are shuffled within a slot by a seeded buffer. Every slot yields the same number of
batches, so the DataLoader's round-robin over workers is exact and `start_step` resumes an epoch
at exactly the batch where it stopped.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..recipe import Recipe, load_recipe
from ..storage import read_frame

SOURCES = {"latents.pth": "video_latents", "audio_latents.pth": "audio_latents",
           "reference_audio_latents.pth": "reference_audio_latents"}
"""Shard member -> batch key (ltx-trainer's source names)."""


def load_pth(data: bytes) -> Any:
    """A `.pth` member, loaded the way the trainer loads its files (tensors and plain numbers only)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def first_reference(ref: dict[str, Any]) -> dict[str, Any]:
    """Reference 0 of a [K, 8, T, 16] stack as the upstream trainer's [8, T, 16] dict (no `variants`)."""
    out = {k: v for k, v in ref.items() if k != "variants"}
    if ref["latents"].ndim == 4:
        out["latents"] = ref["latents"][0].clone()
    return out


def shard_index(recipe: Recipe, split: str) -> list[tuple[Path, int]]:
    """(tar path, samples in it) of the split's latent shards, from the shards manifest."""
    shards = read_frame(recipe.manifests_dir, "shards", ok_only=True).filter(pl.col("split") == split)
    if shards.is_empty():
        raise ValueError(f"build {recipe.name!r} has no {split} samples in its shards table")
    counts = shards.group_by("shard").len().sort("shard")
    members = {m for ms in shards["members"].to_list() for m in ms}
    if not any(m.endswith(".latents.pth") for m in members):
        raise ValueError(f"build {recipe.name!r}: the {split} shards carry no latents (encode.backend is none?)")
    return [(recipe.output_dir / "shards" / s, n) for s, n in counts.iter_rows()]


class LatentShards(IterableDataset):
    """The split's samples as trainer-ready dicts; see the module docstring for order and resumption."""

    def __init__(self, shards: list[tuple[Path, int]], batch_size: int, seed: int = 0, epoch: int = 0,
                 start_step: int = 0, shuffle_buffer: int = 256, rank: int = 0, world_size: int = 1,
                 references: str = "stack", conditions: Path | None = None) -> None:
        if references not in ("stack", "first"):
            raise ValueError(f"references must be 'stack' or 'first', not {references!r}")
        self.shards, self.batch_size, self.seed, self.epoch = shards, batch_size, seed, epoch
        self.start_step, self.shuffle_buffer, self.rank, self.world_size = start_step, shuffle_buffer, rank, world_size
        self.references = references
        self.conditions = load_pth(Path(conditions).read_bytes()) if conditions is not None else None

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def _slot_range(self, workers: int, slot: int) -> tuple[list[tuple[Path, int]], int, int]:
        """(the shards slot `slot` reads, with each one's first sample index in this epoch's stream, the
        samples to skip in the first of them, the samples the slot yields) for this epoch: the
        shuffled shards form one stream of T samples and slot s takes samples [s T / S, (s+1) T / S)
        rounded down to whole batches per slot (S = ranks x workers)."""
        slots = self.world_size * workers
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.shards))
        shards = [self.shards[i] for i in order]
        total = sum(n for _, n in shards)
        per_slot = (total // slots) // self.batch_size * self.batch_size
        lo, hi = slot * per_slot, (slot + 1) * per_slot
        mine, start = [], 0
        for path, n in shards:
            if start < hi and start + n > lo:
                mine.append((path, start))
            start += n
        skip = lo - mine[0][1] if mine else 0
        return mine, skip, per_slot

    def batches_per_epoch(self, workers: int) -> int:
        """Batches every worker yields per epoch (the DataLoader yields `workers` x this per rank)."""
        return self._slot_range(max(1, workers), 0)[2] // self.batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import webdataset as wds

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # The DataLoader takes its j-th batch from worker j % workers, starting at worker 0 on every
        # start. Global batch g comes from role g % workers, so a run resumed at step s gives worker w
        # the role (w + s) % workers; that role has already given the batches g < s with g % workers == role.
        role = (worker + self.start_step) % workers
        slot = self.rank * workers + role
        shards, skip, per_slot = self._slot_range(workers, slot)
        done = len(range(role, self.start_step, workers))
        keep = per_slot - done * self.batch_size
        if keep <= 0 or not shards:
            return
        rng = random.Random(f"{self.seed}-{self.epoch}-{slot}")
        pipeline = wds.DataPipeline(
            wds.SimpleShardList([str(p) for p, _ in shards]),
            # latents and json only: the mp4/wav beside them are not read into memory
            wds.tarfile_to_samples(select_files=lambda name: name.endswith((".pth", ".json"))
                                   and not name.endswith(".face_boxes.json")),
            _slice(skip, per_slot),
            wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng),
        )
        stream = iter(pipeline)
        for _ in range(done * self.batch_size):  # skipped before decoding: cheap
            next(stream)
        for _, sample in zip(range(keep), stream, strict=False):
            yield self._decode(sample)

    def _decode(self, sample: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"key": sample["__key__"], "meta": json.loads(sample["json"])}
        for member, name in SOURCES.items():
            if member in sample:
                out[name] = load_pth(sample[member])
        if self.references == "first" and "reference_audio_latents" in out:
            out["reference_audio_latents"] = first_reference(out["reference_audio_latents"])
        if self.conditions is not None:
            out["conditions"] = self.conditions
        return out


def _slice(skip: int, count: int) -> Any:
    """A webdataset stage yielding `count` samples after skipping `skip`."""
    def take(src: Iterator[dict]) -> Iterator[dict]:
        for i, sample in enumerate(src):
            if i >= skip + count:
                return
            if i >= skip:
                yield sample
    return take


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors and numbers per key; `key` and `meta` stay lists (json metadata is ragged)."""
    out: dict[str, Any] = {"key": [s["key"] for s in samples], "meta": [s["meta"] for s in samples]}
    for name in samples[0]:
        if name in ("key", "meta"):
            continue
        out[name] = torch.utils.data.default_collate([s[name] for s in samples])
    return out


def latent_loader(recipe: Recipe | str | Path, split: str = "train", batch_size: int = 1, num_workers: int = 2,
                  seed: int = 0, epoch: int = 0, start_step: int = 0, shuffle_buffer: int = 256, rank: int = 0,
                  world_size: int = 1, references: str = "stack", conditions: Path | None = None,
                  **loader_kw: Any) -> DataLoader:
    """A DataLoader over the split's latent shards: batches of trainer dicts, resumable at `start_step`
    (batches already taken this epoch). More loader options (pin_memory, prefetch_factor) pass through."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(Path(recipe))
    dataset = LatentShards(shard_index(recipe, split), batch_size, seed, epoch, start_step, shuffle_buffer, rank,
                           world_size, references, conditions)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate, **loader_kw)
