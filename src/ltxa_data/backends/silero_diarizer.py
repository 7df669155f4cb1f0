"""Offline diarization: silero-vad speech regions (model ships in the package), split into local
speakers by clustering voice embeddings of short windows. It cannot detect overlapped speech:
every turn has overlap=False."""

from __future__ import annotations

import itertools

import numpy as np

from ..analysis.clustering import agglomerative_labels
from ..errors import SystemicError
from ..recipe import SileroVadConfig
from .base import SpeakerEmbedder, Turn


class SileroVadDiarizer:
    def __init__(self, cfg: SileroVadConfig, embedder: SpeakerEmbedder | None) -> None:
        try:
            import torch
            from silero_vad import get_speech_timestamps, load_silero_vad
        except ImportError as e:
            raise SystemicError(f"silero-vad does not import ({e}); install the project's dependencies") from e
        self._torch = torch
        self._timestamps = get_speech_timestamps
        self._model = load_silero_vad()
        self.cfg = cfg
        self.embedder = embedder

    def regions(self, audio: np.ndarray, sample_rate: int) -> list[tuple[float, float]]:
        """Speech regions in seconds."""
        self._model.reset_states()
        ts = self._timestamps(
            self._torch.from_numpy(np.ascontiguousarray(audio, np.float32)),
            self._model,
            threshold=self.cfg.threshold,
            sampling_rate=sample_rate,
            min_speech_duration_ms=self.cfg.min_speech_ms,
            min_silence_duration_ms=self.cfg.min_silence_ms,
            speech_pad_ms=self.cfg.speech_pad_ms,
        )
        return [(t["start"] / sample_rate, t["end"] / sample_rate) for t in ts]

    def __call__(self, audio: np.ndarray, sample_rate: int) -> list[Turn]:
        regions = self.regions(audio, sample_rate)
        if self.embedder is None or len(regions) == 0:
            return [Turn("S0", round(s, 3), round(e, 3)) for s, e in regions]
        chunks = [c for s, e in regions for c in _chunks(s, e, self.cfg.window_s)]
        windows = [audio[round(s * sample_rate) : round(e * sample_rate)] for s, e in chunks]
        labels = agglomerative_labels(self.embedder.embed(windows, sample_rate), self.cfg.speaker_threshold,
                                      self.cfg.centroid_merge_threshold)
        # Local speaker names by first appearance, so they do not depend on cluster numbering.
        order: dict[int, str] = {}
        for lab in labels:
            order.setdefault(int(lab), f"S{len(order)}")
        turns: list[Turn] = []
        for (s, e), lab in zip(chunks, labels, strict=True):
            spk = order[int(lab)]
            if turns and turns[-1].speaker == spk and s - turns[-1].end < 1e-6:
                turns[-1] = Turn(spk, turns[-1].start, round(e, 3))
            else:
                turns.append(Turn(spk, round(s, 3), round(e, 3)))
        return turns


def _chunks(start: float, end: float, window: float) -> list[tuple[float, float]]:
    """Split [start, end) into near-equal chunks of about `window` seconds."""
    n = max(1, round((end - start) / window))
    edges = np.linspace(start, end, n + 1)
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]
