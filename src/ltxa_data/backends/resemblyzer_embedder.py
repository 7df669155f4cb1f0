"""Offline speaker embeddings: resemblyzer's GE2E encoder (its weights ship in the package)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import SystemicError

_TARGET_DBFS = -30.0  # resemblyzer's own preprocessing level


class ResemblyzerEmbedder:
    """256-dim GE2E embeddings, one per window (windows are volume-normalised first)."""

    dim = 256
    sample_rate = 16000

    def __init__(self, device: str = "cpu") -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
                from resemblyzer import VoiceEncoder
        except ImportError as e:
            raise SystemicError(f"resemblyzer is not installed or does not import ({e}); "
                                "install the project with `make demo` or `pip install -e .`") from e
        self._encoder = VoiceEncoder(device=device, verbose=False)

    def embed(self, windows: list[np.ndarray], sample_rate: int) -> np.ndarray:
        if sample_rate != self.sample_rate:
            raise ValueError(f"resemblyzer needs {self.sample_rate} Hz audio, got {sample_rate}")
        out = np.zeros((len(windows), self.dim), np.float32)
        for i, w in enumerate(windows):
            w = np.asarray(w, np.float32)
            rms = float(np.sqrt(np.mean(w**2))) if w.size else 0.0
            if rms > 1e-6:
                w = w * (10 ** (_TARGET_DBFS / 20) / rms)
            e = self._encoder.embed_utterance(w)
            out[i] = e / max(float(np.linalg.norm(e)), 1e-8)
        return out
