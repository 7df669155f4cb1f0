"""Latents for the trainer: samples' media through the LTX-2 VAE encoders, in batches.

The shard stage cuts each sample's media (frames, target audio, references) on CPU threads ahead of
the encoder (`prefetched`), so decoding overlaps encoding; `SampleEncoder` encodes a batch of cut
samples and returns each one's latent members, the trainer's dicts saved with `torch.save`:

- `latents.pth`: `latents` bf16 [128, F', H', W'] and `num_frames`, `height`, `width` (latent sizes), `fps`;
- `audio_latents.pth`: `latents` float32 [8, T, 16] and `num_time_steps`, `frequency_bins`, `duration` (s);
- `reference_audio_latents.pth`: the same for the K references as a stack [K, 8, T', 16] with `variants` = K.

A batch that runs out of GPU memory is halved and retried (`in_batches`); at one sample it fails.
"""

from __future__ import annotations

import io
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ..backends import load_encoders
from ..errors import is_out_of_memory
from ..recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, Recipe
from ..storage import cached_file_sha256

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

LATENT_MEMBERS = ("latents.pth", "audio_latents.pth", "reference_audio_latents.pth")
"""The members an encoded sample adds to its shard, named after the trainer's folders."""


@dataclass
class CutSample:
    """One sample's media, cut and ready to encode: frames uint8 [F, S, S, 3] (None: not decoded, the mp4 is in
    `media`), audio float32 [2, n] at 16 kHz, references float32 [2, m] each (after their loudness gain)."""

    frames: np.ndarray | None
    audio: np.ndarray
    references: list[np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    media: dict[str, bytes] | None = None
    """The encoded mp4/wav members, when made on the cutting thread."""


def in_batches(fn: Callable[[list[T]], list[R]], items: list[T], batch_size: int,
               shrunk: Callable[[int], None] | None = None) -> list[R]:
    """`fn` over `items` in batches of `batch_size`; a batch that runs out of (GPU) memory is halved and
    retried, and later batches keep the smaller size. Out of memory at one item is raised."""
    out: list[R] = []
    i, size = 0, max(1, batch_size)
    while i < len(items):
        batch = items[i: i + size]
        try:
            out.extend(fn(batch))
        except Exception as e:
            if not is_out_of_memory(e) or len(batch) == 1:
                raise
            size = max(1, len(batch) // 2)
            _empty_cache()
            log.warning("out of memory encoding %d items; retrying with batches of %d", len(batch), size)
            if shrunk is not None:
                shrunk(size)
            continue
        i += len(batch)
    return out


def _empty_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def prefetched(fn: Callable[[T], R], items: Iterable[T], threads: int, ahead: int) -> Iterator[tuple[T, Future[R]]]:
    """(item, future of fn(item)) in order, with at most `ahead` items submitted to `threads` threads
    beyond the one being consumed: work on later items overlaps the caller's work on earlier ones.
    `threads` 0: each item runs on this thread when it is consumed, nothing overlaps."""
    if threads == 0:
        for item in items:
            fut: Future[R] = Future()
            try:
                fut.set_result(fn(item))
            except Exception as e:
                fut.set_exception(e)
            yield item, fut
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="cut")
    try:
        queue: deque[tuple[T, Future[R]]] = deque()
        for item in items:
            queue.append((item, pool.submit(fn, item)))
            if len(queue) > ahead:
                yield queue.popleft()
        while queue:
            yield queue.popleft()
    finally:  # on an error downstream (or close()), queued work is dropped, not run
        pool.shutdown(wait=True, cancel_futures=True)


def saved_bytes(obj: dict[str, Any]) -> bytes:
    """`torch.save` of a dict, as bytes."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def video_latent_dict(latents: Any) -> dict[str, Any]:
    """The trainer's `latents/` dict for one clip's latents [C, F', H', W']."""
    # clone: a row of a batch is a view, and torch.save would write the whole batch's storage
    return {"latents": latents.clone(), "num_frames": int(latents.shape[1]), "height": int(latents.shape[2]),
            "width": int(latents.shape[3]), "fps": float(TARGET_FPS)}


def audio_latent_dict(latents: Any, duration_s: float) -> dict[str, Any]:
    """The trainer's `audio_latents/` dict for latents [8, T, 16], or a reference stack [K, 8, T, 16]
    (then with `variants` = K, the audio-only trainer's format)."""
    out = {"latents": latents.clone(), "num_time_steps": int(latents.shape[-2]),
           "frequency_bins": int(latents.shape[-1]), "duration": float(duration_s)}
    if latents.ndim == 4:
        out["variants"] = int(latents.shape[0])
    return out


class SampleEncoder:
    """The recipe's LTX-2 encoders, loaded once per worker; `encode` turns cut samples into latent members."""

    def __init__(self, recipe: Recipe, checkpoint_sha256: str | None = None) -> None:

        self.vae = load_encoders(recipe)
        self.batch_size = recipe.encode.batch_size
        self.reference_batch_size = 4 * recipe.encode.batch_size
        self.info = {
            "checkpoint": self.vae.checkpoint.name,
            "checkpoint_sha256": checkpoint_sha256,  # the driver hashes once (`checkpoint_digest`)
            "ltx_core_version": self.vae.ltx_core_version,
            "video_dtype": str(self.vae.video_dtype).removeprefix("torch."),
            "video_compute_dtype": str(self.vae.compute_dtype).removeprefix("torch."),
            "audio_dtype": "float32",
            "device": self.vae.device.type,
        }

    def _shrink(self, size: int) -> None:
        self.batch_size = min(self.batch_size, size)

    def _shrink_references(self, size: int) -> None:
        self.reference_batch_size = min(self.reference_batch_size, size)

    def encode(self, cuts: list[CutSample]) -> list[dict[str, bytes]]:
        """Latent members of each cut sample (same order); checks every latent is finite."""
        import torch

        vae = self.vae
        videos = in_batches(lambda b: list(vae.encode_video(torch.from_numpy(np.stack([c.frames for c in b])))),
                            cuts, self.batch_size, self._shrink)
        audios = in_batches(lambda b: list(vae.encode_audio(torch.from_numpy(np.stack([c.audio for c in b])),
                                                            AUDIO_SAMPLE_RATE)),
                            cuts, self.batch_size, self._shrink)
        flat = [r for c in cuts for r in c.references]
        by_len: dict[int, list[int]] = {}
        for i, r in enumerate(flat):
            by_len.setdefault(r.shape[1], []).append(i)
        refs: list[Any] = [None] * len(flat)
        for idx in by_len.values():  # one length per batch: padding would change the latents
            got = in_batches(lambda b: list(vae.encode_audio(torch.from_numpy(np.stack([flat[i] for i in b])),
                                                             AUDIO_SAMPLE_RATE)),
                             idx, self.reference_batch_size, self._shrink_references)
            for i, z in zip(idx, got, strict=True):
                refs[i] = z
        out, k = [], 0
        for c, v, a in zip(cuts, videos, audios, strict=True):
            mine = refs[k: k + len(c.references)]
            k += len(c.references)
            if len({tuple(z.shape) for z in mine}) > 1:
                raise ValueError(f"references of one sample differ in length: {[r.shape[1] for r in c.references]}")
            for name, z in (("video", v), ("audio", a), *((f"reference {i}", z) for i, z in enumerate(mine))):
                if not torch.isfinite(z.float()).all():
                    raise ValueError(f"the {name} latents are not finite")
            members = {"latents.pth": saved_bytes(video_latent_dict(v)),
                       "audio_latents.pth": saved_bytes(audio_latent_dict(a, c.audio.shape[1] / AUDIO_SAMPLE_RATE))}
            if mine:
                members["reference_audio_latents.pth"] = saved_bytes(audio_latent_dict(
                    torch.stack(mine), c.references[0].shape[1] / AUDIO_SAMPLE_RATE))
            out.append(members)
        return out


def checkpoint_digest(recipe: Recipe) -> str:
    """The checkpoint's sha256 as `LtxVaeEncoders.checkpoint_sha256` spells it, from a cache in the
    output folder keyed by path, size and mtime (hashing a 40 GB checkpoint takes minutes: once per
    file, in the driver, not per worker)."""
    cfg, cache = recipe.encode, recipe.output_dir / ".cache"
    assert cfg.checkpoint is not None
    video = cached_file_sha256(recipe.resolve(cfg.checkpoint), cache)
    if cfg.audio_checkpoint is None:
        return video
    return f"video:{video},audio:{cached_file_sha256(recipe.resolve(cfg.audio_checkpoint), cache)}"
