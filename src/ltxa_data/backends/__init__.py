"""Model backends, one small interface per stage, chosen by name in the recipe and loaded lazily.

A backend that cannot load raises `SystemicError` with what to do; none silently no-ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..recipe import Recipe


@dataclass(frozen=True)
class Turn:
    """A stretch of one local speaker's speech, in seconds from the start of the audio."""

    speaker: str
    start: float
    end: float
    overlap: bool = False


class Diarizer(Protocol):
    """Who speaks when, in one recording (mono float32 at `sample_rate`)."""

    def __call__(self, audio: np.ndarray, sample_rate: int) -> list[Turn]: ...


class SpeakerEmbedder(Protocol):
    """One L2-normalised embedding per speech window (mono float32 at `sample_rate`)."""

    dim: int

    def embed(self, windows: list[np.ndarray], sample_rate: int) -> np.ndarray: ...


# Production backends that later versions add; a recipe naming one is refused with this reason.
PLANNED = {
    ("diarize", "pyannote"): "diarize.backend 'pyannote' (pyannote.audio) is not available in this version yet",
    ("embed", "speechbrain_ecapa"): "embed.backend 'speechbrain_ecapa' (speechbrain ECAPA) is not available "
    "in this version yet",
    ("encode", "ltx"): "encode.backend 'ltx' (LTX-2 VAE latents) is not available in this version yet; "
    "use encode.backend: none for media-only shards",
}


def unavailable_backends(recipe: Recipe) -> list[str]:
    """Backends the recipe names that this version cannot run, each with the reason."""
    chosen = [("diarize", recipe.diarize.backend), ("embed", recipe.embed.backend), ("encode", recipe.encode.backend)]
    return [PLANNED[c] for c in chosen if c in PLANNED]


def load_embedder(recipe: Recipe) -> SpeakerEmbedder:
    """The recipe's speaker embedder, loaded."""
    if recipe.embed.backend == "resemblyzer":
        from .resemblyzer_embedder import ResemblyzerEmbedder

        return ResemblyzerEmbedder()
    raise ValueError(PLANNED.get(("embed", recipe.embed.backend), f"unknown embed backend {recipe.embed.backend}"))


def load_diarizer(recipe: Recipe) -> Diarizer:
    """The recipe's diarizer, loaded."""
    if recipe.diarize.backend == "silero_vad":
        from .silero_diarizer import SileroVadDiarizer

        cfg = recipe.diarize.silero_vad
        embedder = None
        if cfg.local_speakers == "cluster":
            from .resemblyzer_embedder import ResemblyzerEmbedder

            embedder = ResemblyzerEmbedder()
        return SileroVadDiarizer(cfg, embedder)
    raise ValueError(PLANNED.get(("diarize", recipe.diarize.backend),
                                 f"unknown diarize backend {recipe.diarize.backend}"))
