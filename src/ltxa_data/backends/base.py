"""The backends' small interfaces: a diarizer gives `Turn`s, a speaker embedder gives embeddings (the face
detector's is `face_detector.FaceDetector`, the active-speaker scorer's `active_speaker.ActiveSpeakerScorer`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Turn:
    """A stretch of one local speaker's speech, in seconds from the start of the audio."""

    speaker: str
    start: float
    end: float
    overlap: bool = False


def turns_from_tracks(tracks: list[tuple[str, float, float]], duration: float) -> list[Turn]:
    """Turns from (label, start, end) tracks that may overlap in time, clipped to [0, duration].

    Each track is cut where the number of distinct speakers changes; a piece where two or more
    speakers talk is marked `overlap`. Labels become S0, S1, ... by first appearance.
    """
    merged: list[tuple[str, float, float]] = []  # one label's own overlapping tracks become one
    for lab, s, e in sorted(((lab, max(0.0, float(s)), min(float(duration), float(e))) for lab, s, e in tracks),
                            key=lambda t: (t[0], t[1])):
        if merged and merged[-1][0] == lab and s <= merged[-1][2]:
            merged[-1] = (lab, merged[-1][1], max(merged[-1][2], e))
        else:
            merged.append((lab, s, e))
    tracks = sorted((t for t in merged if t[2] - t[1] > 1e-3), key=lambda t: (t[1], t[2], t[0]))
    names: dict[str, str] = {}
    for lab, _, _ in tracks:
        names.setdefault(lab, f"S{len(names)}")
    edges = sorted({x for _, s, e in tracks for x in (s, e)})
    at = {x: i for i, x in enumerate(edges)}
    # Overlap is a property of each elementary interval [edges[i], edges[i + 1]).
    talking: list[set[str]] = [set() for _ in edges]
    for lab, s, e in tracks:
        for i in range(at[s], at[e]):
            talking[i].add(lab)
    turns: list[Turn] = []
    for lab, s, e in tracks:
        pieces: list[Turn] = []
        for i in range(at[s], at[e]):
            over = len(talking[i]) >= 2
            if pieces and pieces[-1].overlap == over:
                pieces[-1] = Turn(names[lab], pieces[-1].start, edges[i + 1], over)
            else:
                pieces.append(Turn(names[lab], edges[i], edges[i + 1], over))
        turns.extend(Turn(t.speaker, round(t.start, 3), round(t.end, 3), t.overlap) for t in pieces
                     if t.end - t.start > 1e-3)
    return sorted(turns, key=lambda t: (t.start, t.speaker))


class Diarizer(Protocol):
    """Who speaks when, in one recording (mono float32 at `sample_rate`)."""

    def __call__(self, audio: np.ndarray, sample_rate: int) -> list[Turn]: ...


class SpeakerEmbedder(Protocol):
    """One L2-normalised embedding per speech window (mono float32 at `sample_rate`)."""

    dim: int

    def embed(self, windows: list[np.ndarray], sample_rate: int) -> np.ndarray: ...
