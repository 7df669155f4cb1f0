"""Choosing windows where exactly one speaker talks: shared by targets and references."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechWindow:
    start: float
    speech_ratio: float


def covered(intervals: Sequence[tuple[float, float]], a: float, b: float) -> float:
    """Seconds of [a, b) covered by the (possibly overlapping) intervals."""
    clipped = sorted((max(s, a), min(e, b)) for s, e in intervals if e > a and s < b)
    total, cur_s, cur_e = 0.0, None, None
    for s, e in clipped:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def single_speaker_windows(
    own: Sequence[tuple[float, float]],
    others: Sequence[tuple[float, float]],
    starts: Iterable[float],
    length: float,
    min_speech_ratio: float,
    max_other_speech_s: float,
    max_windows: int,
) -> list[SpeechWindow]:
    """Non-overlapping windows of `length` where the speaker talks at least `min_speech_ratio` of
    the time and everyone else at most `max_other_speech_s`; densest first, returned by start."""
    cands = []
    for t in starts:
        if covered(others, t, t + length) > max_other_speech_s + 1e-9:
            continue
        ratio = covered(own, t, t + length) / length
        if ratio + 1e-9 >= min_speech_ratio:
            cands.append(SpeechWindow(t, round(ratio, 6)))
    chosen: list[SpeechWindow] = []
    for c in sorted(cands, key=lambda w: (-w.speech_ratio, w.start)):
        if len(chosen) >= max_windows:
            break
        if all(c.start + length <= w.start + 1e-9 or w.start + length <= c.start + 1e-9 for w in chosen):
            chosen.append(c)
    return sorted(chosen, key=lambda w: w.start)
