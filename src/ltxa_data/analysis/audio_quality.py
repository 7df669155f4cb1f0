"""Quality of a reference window: loudness, peak, clipping, an SNR estimate, speech energy, and the
gain that normalises its loudness under a peak ceiling.

Everything is measured on the audio a shard carries (16 kHz, the two channels of the wav):
loudness, SNR and speech energy on the mono mix (the mean of the channels), peak and clipping on
the samples of both channels.

SNR estimate: the window is cut into 20 ms frames; the noise power is the mean power of the
quietest 10% of frames (the gaps between words and phrases), the speech power is the mean power
of the frames inside the speaker's turns minus that noise, and the SNR is their ratio in dB. On
synthetic syllables with pauses plus white noise it is within 0.6 dB of the true SNR from 0 to
30 dB (tests/test_references.py). Its limits: it assumes stationary noise and that at least a
tenth of the window is pauses; speech with no pause reads low (quiet stretches of speech are taken
for noise: clean continuous synthetic speech reads about 15 dB); noise that only sounds during
speech is not seen; noise powers below -100 dBFS are taken as -100 dBFS, so digitally silent
pauses read as about (speech level + 100) dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

FRAME_S = 0.02
"""Frame length of the SNR estimate and the speech energy."""
NOISE_QUANTILE = 0.1
"""Fraction of the quietest frames whose mean power is the noise estimate."""
NOISE_FLOOR_POWER = 1e-10
"""-100 dBFS: the least noise power the SNR estimate assumes."""
CLIP_LEVEL = 0.999
"""A sample at or above this magnitude counts as clipped (16-bit full scale is 32767/32768)."""
LOUDNESS_BLOCK_S = 0.4
"""BS.1770 gating block: shorter audio has no loudness."""


@dataclass(frozen=True)
class AudioQuality:
    """The measures of one window (see the module docstring for how each is made)."""

    lufs: float
    """Integrated loudness (BS.1770-4) of the mono mix; -inf when every gating block is silent."""
    peak_dbfs: float
    """Sample peak over both channels; -inf for digital silence."""
    clipped_fraction: float
    """Fraction of samples (both channels) with |x| >= CLIP_LEVEL."""
    snr_db: float
    """Speech-to-noise estimate."""
    speech_energy_db: float
    """Mean power of the window with frames outside the speaker's turns counted as zero (dBFS)."""


def to_db(power_or_amplitude: float, power: bool = False) -> float:
    """dB of a power (10 log10) or amplitude (20 log10); -inf for zero."""
    if power_or_amplitude <= 0:
        return -math.inf
    return (10 if power else 20) * math.log10(power_or_amplitude)


def mono_mix(audio: np.ndarray) -> np.ndarray:
    """The mean of the channels of [C, N] audio (or 1-D audio as is), as float64."""
    a = np.asarray(audio, dtype=np.float64)
    return a if a.ndim == 1 else a.mean(axis=0)


@cache
def _meter(sample_rate: int) -> Any:
    import pyloudnorm  # pulls in scipy.signal (~0.8 s): only when a loudness is measured, not for every command

    return pyloudnorm.Meter(sample_rate)


def integrated_lufs(mono: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness of one channel (pyloudnorm), in LUFS: -inf when every
    400 ms block is below the -70 LUFS gate (silence). Raises ValueError for audio shorter than a
    block, which has no defined loudness."""
    x = np.asarray(mono, dtype=np.float64)
    if x.shape[0] < LOUDNESS_BLOCK_S * sample_rate:
        raise ValueError(f"{x.shape[0] / sample_rate:.3f} s of audio is shorter than a {LOUDNESS_BLOCK_S} s "
                         "loudness block")
    if not np.any(x):
        return -math.inf
    lufs = float(_meter(sample_rate).integrated_loudness(x))
    return lufs if math.isfinite(lufs) else -math.inf


def peak_dbfs(audio: np.ndarray) -> float:
    """Sample peak over every channel, dBFS."""
    return to_db(float(np.max(np.abs(audio)))) if np.size(audio) else -math.inf


def clipped_fraction(audio: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Fraction of samples (every channel) whose magnitude is at least `level`."""
    return float(np.mean(np.abs(audio) >= level)) if np.size(audio) else 0.0


def frame_powers(mono: np.ndarray, sample_rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """Mean square of consecutive non-overlapping frames (a trailing partial frame is dropped)."""
    n = max(1, round(frame_s * sample_rate))
    k = len(mono) // n
    return np.mean(np.square(np.asarray(mono[: k * n], dtype=np.float64)).reshape(k, n), axis=1)


def speech_frames(n_frames: int, spans: list[tuple[float, float]], frame_s: float = FRAME_S) -> np.ndarray:
    """Frames whose centre lies in one of the spans (seconds from the window start)."""
    centres = (np.arange(n_frames) + 0.5) * frame_s
    mask = np.zeros(n_frames, dtype=bool)
    for s, e in spans:
        mask |= (centres >= s) & (centres < e)
    return mask


def snr_estimate_db(powers: np.ndarray, speech: np.ndarray) -> float:
    """SNR (dB) from frame powers and the frames that are the speaker's speech (all frames when
    none are): speech power (minus the noise) over the mean power of the quietest 10% of frames."""
    if powers.size == 0:
        return -30.0
    k = max(1, round(NOISE_QUANTILE * powers.size))
    noise = max(float(np.mean(np.sort(powers)[:k])), NOISE_FLOOR_POWER)
    speech_power = float(np.mean(powers[speech])) if speech.any() else float(np.mean(powers))
    return 10 * math.log10(max(speech_power / noise - 1.0, 1e-3))


def measure(audio: np.ndarray, sample_rate: int, speech_spans: list[tuple[float, float]]) -> AudioQuality:
    """All measures of a window: `audio` is [C, N] as the shard carries it, `speech_spans` are the
    speaker's turns in seconds from the window's start."""
    mono = mono_mix(audio)
    powers = frame_powers(mono, sample_rate)
    speech = speech_frames(powers.size, speech_spans)
    energy = float(np.sum(powers[speech])) / powers.size if powers.size else 0.0
    return AudioQuality(
        lufs=integrated_lufs(mono, sample_rate),
        peak_dbfs=peak_dbfs(audio),
        clipped_fraction=clipped_fraction(audio),
        snr_db=snr_estimate_db(powers, speech),
        speech_energy_db=max(to_db(energy, power=True), -100.0),
    )


def normalisation_gain(lufs: float, peak: float, target_lufs: float, ceiling_dbfs: float) -> tuple[float, bool]:
    """(gain in dB, whether the peak ceiling bound it): the gain that brings `lufs` to `target_lufs`,
    lowered where needed so that the peak stays at or below `ceiling_dbfs`."""
    if not (math.isfinite(lufs) and math.isfinite(peak)):
        return 0.0, False
    want, room = target_lufs - lufs, ceiling_dbfs - peak
    return (room, True) if want > room else (want, False)


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """`audio` scaled by `gain_db`, as float32."""
    return (np.asarray(audio, dtype=np.float64) * 10 ** (gain_db / 20)).astype(np.float32)
