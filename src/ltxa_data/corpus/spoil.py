"""The ways the corpus spoils a clip's material (`speech.QUALITY_KINDS`): a reverberant voice, a music bed, burned-in
subtitles, an out-of-focus picture (a small source and a turned head are planned, not applied here)."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

REVERB_RT60_S = 1.0
MUSIC_TO_SPEECH_DB = -10.0
"""A music bed 10 dB under the voice: the SNR estimate reads it at about 10 dB, DNSMOS BAK under 1.7."""
BLUR_SIGMA = 0.025
"""Gaussian blur of the out-of-focus clips, in face heights (a 150-px face: sigma 3.75 px; at 0.04 the frontal
detector loses the face altogether)."""
SUBTITLE_CHARS = 22
"""Characters per subtitle line (a sentence is shown one line at a time as it is spoken)."""


def reverberate(x: np.ndarray, sample_rate: int, seed: int, rt60_s: float = REVERB_RT60_S) -> np.ndarray:
    """`x` in a reverberant room: convolved with exponentially decaying noise (-60 dB at `rt60_s`), the direct
    sound kept at a quarter of the reverberant energy's amplitude; same length and peak."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(rt60_s * sample_rate)) / sample_rate
    ir = rng.standard_normal(t.size) * 10 ** (-3 * t / rt60_s)
    ir /= np.sqrt(np.sum(ir**2))
    wet = fftconvolve(x, ir)[: x.size]
    out = 0.25 * x + wet
    return (out * (np.max(np.abs(x)) / max(float(np.max(np.abs(out))), 1e-9))).astype(np.float32)


def music_bed(n: int, sample_rate: int, seed: int) -> np.ndarray:
    """`n` samples of a music bed at unit RMS: a slow chord progression of soft triads and a beat."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sample_rate
    roots = 220.0 * 2 ** (np.array([0, 5, 7, 3]) / 12)
    chord = np.minimum((t // 2.0).astype(int), 10**9) % len(roots)
    out = np.zeros(n)
    for step in (0, 4, 7, 12):
        f = roots[chord] * 2 ** (step / 12)
        phase = 2 * np.pi * np.cumsum(f) / sample_rate
        out += np.sin(phase) + 0.3 * np.sin(2 * phase)
    beat = np.zeros(n)
    hit = np.exp(-np.arange(round(0.12 * sample_rate)) / (0.03 * sample_rate)) * rng.standard_normal(
        round(0.12 * sample_rate))
    for start in range(0, n, round(0.5 * sample_rate)):
        seg = beat[start : start + hit.size]
        seg += hit[: seg.size]
    out = out / np.sqrt(np.mean(out**2)) + 0.8 * beat / max(float(np.sqrt(np.mean(beat**2))), 1e-9)
    return (out / np.sqrt(np.mean(out**2))).astype(np.float32)


def with_music(speech: np.ndarray, sample_rate: int, seed: int, music_to_speech_db: float = MUSIC_TO_SPEECH_DB
               ) -> np.ndarray:
    """`speech` over a music bed whose RMS is `music_to_speech_db` against the speech's while it sounds."""
    active = speech[np.abs(speech) > 0.02 * max(float(np.max(np.abs(speech))), 1e-9)]
    level = float(np.sqrt(np.mean(active**2))) if active.size else 0.1
    return (speech + music_bed(speech.size, sample_rate, seed) * level * 10 ** (music_to_speech_db / 20)).astype(
        np.float32)


def subtitle_lines(text: str, chars: int = SUBTITLE_CHARS) -> list[str]:
    """A sentence cut into lines of at most `chars` characters at word boundaries."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def burn_subtitle(frame: np.ndarray, line: str, cx: float, cy: float, height: float, max_width: float) -> np.ndarray:
    """`frame` with `line` burned in: white letters up to `height` px tall (smaller where the line would be wider
    than `max_width`) with a black outline, centred on (cx, cy)."""
    import cv2

    font = cv2.FONT_HERSHEY_DUPLEX
    scale = height / cv2.getTextSize("Hg", font, 1.0, 1)[0][1]
    scale = min(scale, max_width / cv2.getTextSize(line, font, 1.0, 1)[0][0])
    thick = max(1, round(height / 12))
    (w, h), _ = cv2.getTextSize(line, font, scale, thick)
    org = (round(cx - w / 2), round(cy + h / 2))
    out = np.ascontiguousarray(frame).copy()
    cv2.putText(out, line, org, font, scale, (0, 0, 0), thick + max(2, round(height / 8)), cv2.LINE_AA)
    cv2.putText(out, line, org, font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def defocus(frame: np.ndarray, face_h: float, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """`frame` out of focus: a Gaussian blur of `sigma` face heights."""
    import cv2

    return cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma * face_h)
