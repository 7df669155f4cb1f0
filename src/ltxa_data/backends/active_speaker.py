"""Active speaker: does the tracked face's mouth move with the window's speech?

A backend scores one target window (`SyncClip`: the face crops of its 121 frames, the per-frame face
boxes and 68 landmarks in crop pixels, and the window's audio with a margin) at every audio offset of
a search range and returns the best (`SyncResult`), in the spirit of SyncNet's confidence and offset.

The offline backend, `mouth_motion`, correlates the mouth opening measured from the landmarks (inner
lips, over the eye-corner distance) with the speech envelope (log energy of the 300-3400 Hz band per
video frame), and scores the best offset against the same mouth out of line with the speech. A still
picture and a listener's closed mouth score 0; a mouth moving to other words stands out of its own null
only by chance; a talking face peaks at its true offset. Measured (threshold 2.0): demo corpus, talking
faces 3.6-8.6, the dub 1.0, still and listener 0; a real photo's mouth warped to pyannote's real speech
sample (benchmarks/active_speaker_real.py), talking 2.5-10.6 (every offset -6..+6 found exactly), dubs,
listeners and stills at most 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

AUDIO_RATE = 16000
FPS = 25
_SAMPLES_PER_FRAME = AUDIO_RATE // FPS
_INNER_LIPS = ((61, 67), (62, 66), (63, 65))
_EYE_CORNERS = (36, 45)


@dataclass(frozen=True)
class SyncClip:
    """One target window for an active-speaker backend.

    `frames`: uint8 [F, S, S, 3], a steady square around the tracked face, upright, one per 25 fps frame.
    `boxes`: float [F, 4] the tracked face (x, y, w, h) per frame, crop pixels.
    `landmarks`: float [F, 68, 2] per frame, crop pixels (iBUG 300-W order).
    `audio`: float32 mono at 16 kHz from `search` frames before the window's first frame to `search`
    frames after its last: (F + 2 * search) * 640 samples.
    """

    frames: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    audio: np.ndarray
    search: int


@dataclass(frozen=True)
class SyncResult:
    """`score` at the best `offset` (frames; > 0: the sound comes that many frames after the mouth): what
    the gate compares with its threshold (mouth_motion: z-score of the lip-envelope correlation against
    the same mouth out of line; syncnet: SyncNet's confidence); `confidence`: a second backend-defined
    figure (mouth_motion: the correlation itself), `activity`: how much
    the mouth moves (backend-defined, 0 for a still mouth), `scores`: one per offset, -search..search."""

    score: float
    offset: int
    confidence: float
    activity: float
    scores: list[float] = field(default_factory=list)


class ActiveSpeakerScorer(Protocol):
    """Scores how well a face's mouth moves with the speech of one window."""

    name: str

    def score(self, clip: SyncClip) -> SyncResult: ...


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening per frame over the eye-corner distance: [F] from [F, 68, 2]."""
    gap = np.mean([np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=1) for a, b in _INNER_LIPS], axis=0)
    eyes = np.linalg.norm(landmarks[:, _EYE_CORNERS[0]] - landmarks[:, _EYE_CORNERS[1]], axis=1)
    return gap / np.maximum(eyes, 1e-6)


def speech_envelope(audio: np.ndarray, num_frames: int, floor_db: float = 50.0) -> np.ndarray:
    """Log energy (dB) of the 300-3400 Hz band per 25 fps frame of 16 kHz mono audio, floored `floor_db`
    below its maximum: [num_frames]."""
    n = num_frames * _SAMPLES_PER_FRAME
    x = np.zeros(n, np.float64)
    x[: min(n, len(audio))] = audio[:n]
    frames = x.reshape(num_frames, _SAMPLES_PER_FRAME) * np.hanning(_SAMPLES_PER_FRAME)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(_SAMPLES_PER_FRAME, 1 / AUDIO_RATE)
    band = spec[:, (freqs >= 300) & (freqs <= 3400)].sum(axis=1)
    db = 10 * np.log10(band + 1e-12)
    return np.maximum(db, db.max() - floor_db)


def _correlations(signal: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Pearson correlation of `signal` [n] with each row of `windows` [m, n] (0 where either is flat)."""
    a = signal - signal.mean()
    b = windows - windows.mean(axis=1, keepdims=True)
    d = np.sqrt((a * a).sum() * (b * b).sum(axis=1))
    return np.divide(b @ a, d, out=np.zeros(len(windows)), where=d > 0)


def circular_windows(x: np.ndarray, n: int) -> np.ndarray:
    """Every length-n window of `x` read circularly, one per start: [len(x), n]."""
    return x[(np.arange(len(x))[:, None] + np.arange(n)[None, :]) % len(x)]


def offset_scores(signal: np.ndarray, envelope: np.ndarray, search: int) -> np.ndarray:
    """Pearson correlation of `signal` [F] with `envelope` [F + 2 * search] shifted by -search..search."""
    n = len(signal)
    return _correlations(signal, circular_windows(envelope, n)[: 2 * search + 1])


def sync_null(signal: np.ndarray, envelope: np.ndarray, search: int, min_shift: int = 20) -> tuple[float, float]:
    """(the mean, the spread) of what an unrelated mouth scores against this speech: the best correlation over
    the searched offsets with the speech rolled at least `min_shift` frames out of line (so the lift of taking
    the best of 2 * search + 1 offsets is in the mean), and the standard deviation of single correlations with
    the window's own speech rolled by every such shift."""
    n = len(signal)
    every = _correlations(signal, circular_windows(envelope, n))  # start d: rolled by search - d frames
    total = len(envelope)
    shifts = range(min_shift + search, n - min_shift - search + 1)
    best = [every[(np.arange(2 * search + 1) - r) % total].max() for r in shifts]
    own = envelope[search: search + n]
    single = _correlations(signal, circular_windows(own, n)[min_shift: n - min_shift + 1])
    return float(np.mean(best)), max(float(np.std(single)), 1e-6)


def best_offset(scores: list[float], search: int) -> int:
    """Index of the best of per-offset scores; ties go to the offset nearest zero."""
    return min(range(len(scores)), key=lambda i: (-scores[i], abs(i - search)))


class MouthMotionScorer:
    """Landmark mouth opening against the speech envelope (offline, no weights).

    The score is how far the correlation at the best offset stands above what the same mouth reaches with
    the window's speech rolled far out of line (at least 20 frames; the best over the same offsets, so
    that searching lifts both alike), in standard deviations of single out-of-line correlations: a z-score
    that does not depend on how strongly a given face's lips follow loudness, and that an unrelated mouth
    (a dub) reaches only by chance. `confidence` is the correlation itself.
    `min_activity`: a mouth whose opening varies less than this (standard deviation, in eye-corner
    distances) is still: it scores 0, whatever the noise correlates with."""

    name = "mouth_motion"

    def __init__(self, min_activity: float = 0.01) -> None:
        self.min_activity = min_activity

    def score(self, clip: SyncClip) -> SyncResult:
        opening = mouth_opening(clip.landmarks)
        activity = float(np.std(opening))
        n = len(opening)
        if activity < self.min_activity:
            return SyncResult(0.0, 0, 0.0, round(activity, 5), [0.0] * (2 * clip.search + 1))
        envelope = speech_envelope(clip.audio, n + 2 * clip.search)
        corr = offset_scores(opening, envelope, clip.search)
        mean, spread = sync_null(opening, envelope, clip.search)
        z = [(float(c) - mean) / spread for c in corr]
        best = best_offset(list(corr), clip.search)
        return SyncResult(round(z[best], 4), best - clip.search, round(float(corr[best]), 4), round(activity, 5),
                          [round(v, 4) for v in z])
