"""Choosing windows where exactly one speaker talks: shared by targets and references."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

W = TypeVar("W")


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


def screen_window(
    own: Sequence[tuple[float, float]],
    others: Sequence[tuple[float, float]],
    start: float,
    length: float,
    min_speech_ratio: float,
    max_other_speech_s: float,
) -> tuple[str | None, float]:
    """(the recipe key of the first rule the window [start, start + length) breaks, or None; the
    speaker's speech ratio in it). Rules in order: `max_other_speech_s`, then `min_speech_ratio`."""
    if covered(others, start, start + length) > max_other_speech_s + 1e-9:
        return "max_other_speech_s", 0.0
    ratio = covered(own, start, start + length) / length
    return ("min_speech_ratio" if ratio + 1e-9 < min_speech_ratio else None), round(ratio, 6)


def non_overlapping(ranked: Iterable[W], start_of: Callable[[W], float], length: float, max_windows: int) -> list[W]:
    """Up to `max_windows` of `ranked` (best first), each overlapping none chosen before it;
    returned by start."""
    chosen: list[W] = []
    for c in ranked:
        if len(chosen) >= max_windows:
            break
        t = start_of(c)
        if all(t + length <= start_of(w) + 1e-9 or start_of(w) + length <= t + 1e-9 for w in chosen):
            chosen.append(c)
    return sorted(chosen, key=start_of)


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
        broken, ratio = screen_window(own, others, t, length, min_speech_ratio, max_other_speech_s)
        if broken is None:
            cands.append(SpeechWindow(t, ratio))
    return non_overlapping(sorted(cands, key=lambda w: (-w.speech_ratio, w.start)), lambda w: w.start, length,
                           max_windows)
