"""Perceptual fingerprints of picture and sound, to find copies of one clip among many videos.

A copy may be re-encoded, rescaled, cropped by a centred margin, trimmed at either end or resampled to
another frame rate. All of these keep the content where it was on the clip's own clock, so both hashes
are taken on an absolute time grid from t=0: a trim shifts the grid by whole steps and at most half a step
more; a frame rate never enters.

* picture, every `step_s` (0.5 s): a 64-bit DCT perceptual hash of centred squares of the displayed
  frame at `SCALES` of its short side. A copy cropped by a centred margin m shows the original's square
  of side f(1 - 2m) where it shows its own square of side f: with scales 0.85 apart, one pair of scales
  of the two videos is within 8 % of the same content (a 10 % margin per side is two scale steps).
* sound, every step / `SOUND_PER_STEP` (0.125 s): a 32-bit hash of 8 kHz mono audio, the signs of the
  change over 0.25 s of the energy differences of 33 neighbouring bands (250-3500 Hz; Haitsma & Kalker's
  fingerprint over a longer window, 0.5 s, so that the up to 62.5 ms by which a trimmed copy's grid misses
  the original's costs at most ~17 % of the bits).

Code 0 marks a step with nothing to compare (no picture, silence) and is never compared.

`match` aligns two videos over every offset at once (cross-correlation of the hash bits by FFT: a
trimmed copy is a sub-sequence) and measures both agreements at the best offset. Copies agree on
78-100 % of their sound bits; other speech, even the same voice, on 50 % at a random offset and up to
~68 % at the best offset of a short overlap. A picture alone cannot tell two clips of one static shot
apart (same person, same background), so sound decides when both videos have it; without, the picture
decides only if it also pins the offset (it changes over time), see `is_duplicate`.

For candidates, every video also carries float32 vectors (`VECTOR_DIM`) of statistics of its sound
(band levels, their spread and modulation) and picture (low DCT terms), one per window of `window_s`
(hopped by half; one for a shorter video), so that a trimmed copy of a long video shares >= 75 % of some
window with it and a clip inside a compilation can meet the compilation's windows. `duplicate_pairs`
searches them with faiss (`candidate_pairs`) and verifies each candidate with `match`;
`duplicate_groups` unites the verified pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
from av.video.reformatter import VideoReformatter

from ..media import FrameSampler, MediaError, frame_geometry, probe, read_audio, read_frames, shrunk
from .clustering import GraphConfig, knn

__all__ = [
    "FINGERPRINT_FIELDS",
    "SCALES",
    "VECTOR_DIM",
    "DuplicateConfig",
    "Fingerprint",
    "Match",
    "PicturePass",
    "candidate_pairs",
    "duplicate_groups",
    "duplicate_pairs",
    "is_duplicate",
    "match",
    "video_fingerprint",
]

VERSION = 1
STEP_S = 0.5
"""Seconds between picture hashes."""
SCALES = (1.0, 0.85, 0.72, 0.61)
"""Sides of the hashed centred squares, as fractions of the displayed frame's short side."""
SOUND_PER_STEP = 4
SAMPLE_RATE = 8000
_HASH_SIZE = 32  # the square is shrunk to 32 x 32 before its DCT
_MAX_SIDE = 160  # frames are shrunk by FFmpeg to this longer side first (a 16:9 short side of 90 px)
_BANDS = np.geomspace(250.0, 3500.0, 34)  # 33 bands -> 32 sign bits
_WINDOW_S = 0.5  # sound analysis window
_LAG = 2  # sound hops between the two spectra whose change is hashed
_SILENCE_DB = -55.0  # sound steps quieter than this (dBFS, in the analysed window) are code 0
_FLAT = 2.0  # picture squares with a grey-level spread below this are code 0
_COARSE = 16  # sound bands of the vectors (pairs of the hashed bands)
PICTURE_TERMS = 4  # the vectors' picture part: the 4 x 4 lowest DCT terms of the second scale
VECTOR_DIM = 3 * _COARSE + PICTURE_TERMS**2
SOUND_WEIGHT = 0.75
"""Share of the sound part in a vector's cosine similarity (the picture's is the rest): sound is the part
that crops, rescales and frame rates leave alone."""


@dataclass(frozen=True)
class Fingerprint:
    """One video's hashes on its time grid and its candidate vectors.

    `picture`: uint64 [steps, len(SCALES)], step i at t = i * step_s. `sound`: uint32
    [steps * SOUND_PER_STEP] (hop step_s / SOUND_PER_STEP), None without an audio track. `vectors`:
    float32 [windows, VECTOR_DIM], unnormalised statistics (`duplicate_pairs` standardises them).
    """

    step_s: float
    picture: np.ndarray
    sound: np.ndarray | None
    vectors: np.ndarray

    def to_row(self) -> dict[str, Any]:
        """The manifest columns (`FINGERPRINT_FIELDS`) as plain Python values."""
        return {
            "fp_version": VERSION,
            "fp_step_s": float(self.step_s),
            "fp_picture": self.picture.ravel().tolist(),
            "fp_sound": None if self.sound is None else self.sound.tolist(),
            "fp_vectors": self.vectors.ravel().tolist(),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Fingerprint:
        if row["fp_version"] != VERSION:
            raise ValueError(f"fingerprint version {row['fp_version']}, this code reads {VERSION}")
        sound = row["fp_sound"]
        return cls(
            step_s=float(row["fp_step_s"]),
            picture=np.asarray(row["fp_picture"], np.uint64).reshape(-1, len(SCALES)),
            sound=None if sound is None else np.asarray(sound, np.uint32),
            vectors=np.asarray(row["fp_vectors"], np.float32).reshape(-1, VECTOR_DIM),
        )


FINGERPRINT_FIELDS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("fp_version", pa.int64(), "fingerprint format version"),
    ("fp_step_s", pa.float64(), "seconds between picture hashes (sound: a quarter of it)"),
    ("fp_picture", pa.list_(pa.uint64()), "picture hashes, steps x 4 scales, row-major; 0: no picture"),
    ("fp_sound", pa.list_(pa.uint32()), "sound hashes, 4 per step; 0: silence; null: no audio track"),
    ("fp_vectors", pa.list_(pa.float32()), f"candidate vectors, windows x {VECTOR_DIM}, row-major"),
)
"""Columns of a fingerprint in a parquet manifest (`Fingerprint.to_row` / `from_row`)."""


# ------------------------------------------------------------------------------------------ fingerprint


def video_fingerprint(
    path: Path | str,
    *,
    duration_s: float | None = None,
    has_audio: bool | None = None,
    step_s: float = STEP_S,
    window_s: float = 60.0,
    picture: tuple[np.ndarray, np.ndarray] | None = None,
) -> Fingerprint:
    """Fingerprint one video. `duration_s` and `has_audio` come from the scan manifest when known
    (otherwise `probe`, which demuxes the file: the duration where both streams have data). Frames are
    read upright and square-pixel by `read_frames`, so rotation and sample aspect need no arguments.
    Cost: one decode of each stream (the picture's is ~all of it), read in chunks of `_CHUNK_S` (bounded
    memory); per grid step one frame is shrunk by FFmpeg to 160 px. `picture`: the picture half when a
    `PicturePass` already computed it (the video's picture is then not decoded here)."""
    if duration_s is None or has_audio is None:
        info = probe(path)
        duration_s = info.duration_s if duration_s is None else duration_s
        has_audio = info.has_audio if has_audio is None else has_audio
    steps = grid_steps(duration_s, step_s)
    if picture is None or len(picture[0]) != steps:
        picture = _picture(path, steps, step_s)
    picture, low_dct = picture
    sound = levels = None
    if has_audio:
        sound, levels = _sound(path, steps * SOUND_PER_STEP, step_s / SOUND_PER_STEP)
    return Fingerprint(step_s=step_s, picture=picture, sound=sound,
                       vectors=_window_vectors(low_dct, levels, sound, step_s, window_s))


def grid_steps(duration_s: float, step_s: float = STEP_S) -> int:
    """Picture steps of a video `duration_s` long: t = 0, step_s, ... up to its duration."""
    return max(1, int(np.floor(duration_s / step_s - 1e-6)) + 1)


class PicturePass:
    """The picture half of a fingerprint (`video_fingerprint`'s `picture`) from a video's frames fed in decode
    order, so that one decode serves it and other whole-video analyses (the scenes stage's). Each grid step's
    frame is chosen as `read_frames` chooses it and shrunk as it shrinks it, so the hashes are the same."""

    def __init__(self, duration_s: float, step_s: float = STEP_S) -> None:
        steps = grid_steps(duration_s, step_s)
        self.times = [i * step_s for i in range(steps)]
        self.hashes = np.empty((steps, len(SCALES)), np.uint64)
        self.low = np.empty((steps, PICTURE_TERMS, PICTURE_TERMS), np.float32)
        self.sampler: FrameSampler | None = None

    def feed(self, frame: Any, stream: Any) -> bool:
        """Take the next decoded frame (PyAV) of `stream`; False once no later frame is needed."""
        if self.sampler is None:
            sar, rotation = frame_geometry(stream, frame)
            scaler = VideoReformatter()
            self.sampler = FrameSampler(self.times, lambda f: shrunk(f, sar, rotation, _MAX_SIDE, scaler), self._put)
        return self.sampler.feed(frame)

    def _put(self, i: int, rgb: np.ndarray) -> None:
        dct = _square_dcts(rgb)
        self.hashes[i] = _picture_hashes(dct)
        self.low[i] = dct[1, :PICTURE_TERMS, :PICTURE_TERMS]

    def result(self, frame_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(hashes, low DCT terms) once the last frame was fed; `frame_s`: one frame's display interval."""
        if self.sampler is None:
            raise MediaError("video stream decoded no frames")
        self.sampler.finish(frame_s)
        return self.hashes, self.low


_CHUNK_S = 300.0


def _picture(path: Path | str, steps: int, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(hashes uint64 [steps, scales], low DCT terms of the second scale float32 [steps, 4, 4])."""
    hashes = np.empty((steps, len(SCALES)), np.uint64)
    low = np.empty((steps, PICTURE_TERMS, PICTURE_TERMS), np.float32)
    chunk = max(1, round(_CHUNK_S / step_s))
    for s in range(0, steps, chunk):
        frames = read_frames(path, [i * step_s for i in range(s, min(steps, s + chunk))], max_side=_MAX_SIDE)
        for i, rgb in enumerate(frames, start=s):
            dct = _square_dcts(rgb)
            hashes[i] = _picture_hashes(dct)
            low[i] = dct[1, :PICTURE_TERMS, :PICTURE_TERMS]
    return hashes, low


def _square_dcts(rgb: np.ndarray) -> np.ndarray:
    """DCTs [len(SCALES), 32, 32] of the centred squares of one frame (grey levels 0-255)."""
    import scipy.fft  # ~0.3 s to import: only where a fingerprint is computed

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = grey.shape
    out = np.empty((len(SCALES), _HASH_SIZE, _HASH_SIZE), np.float32)
    for k, f in enumerate(SCALES):
        side = max(1, round(f * min(h, w)))
        y, x = (h - side) // 2, (w - side) // 2
        sq = cv2.resize(grey[y : y + side, x : x + side], (_HASH_SIZE, _HASH_SIZE), interpolation=cv2.INTER_AREA)
        out[k] = 0.0 if sq.std() < _FLAT else scipy.fft.dctn(sq, norm="ortho")
    return out


_ZIGZAG = sorted(((u, v) for u in range(12) for v in range(12)), key=lambda uv: (uv[0] + uv[1], uv[0]))[1:65]
_AC = (np.array([u for u, _ in _ZIGZAG]), np.array([v for _, v in _ZIGZAG]))
_BIT = np.left_shift(np.uint64(1), np.arange(64, dtype=np.uint64))


def _picture_hashes(dct: np.ndarray) -> np.ndarray:
    """uint64 per square: bit b set where the b-th lowest AC term (zigzag) is above their median."""
    ac = dct[..., _AC[0], _AC[1]]
    bits = ac > np.median(ac, axis=-1, keepdims=True)
    return (bits.astype(np.uint64) * _BIT).sum(axis=-1, dtype=np.uint64)


def _sound(path: Path | str, hops: int, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(hashes uint32 [hops], log10 energies of `_COARSE` bands float32 [hops, 16]) of windows of 0.5 s
    centred on t = k hop_s, decoded in chunks with half a window of context on each side."""
    hop = round(hop_s * SAMPLE_RATE)
    win = round(_WINDOW_S * SAMPLE_RATE)
    energies = np.empty((hops, len(_BANDS) - 1))
    loud = np.empty(hops, bool)
    chunk = max(1, round(_CHUNK_S / hop_s))
    for s in range(0, hops, chunk):
        n = min(hops, s + chunk) - s
        audio = read_audio(path, SAMPLE_RATE, 1, start_s=(s * hop - win // 2) / SAMPLE_RATE,
                           duration_s=((n - 1) * hop + win) / SAMPLE_RATE)[0]
        energies[s : s + n], loud[s : s + n] = _band_energies(audio, hop, n)
    diff = energies[:, :-1] - energies[:, 1:]
    bits = np.zeros(diff.shape, bool)
    bits[_LAG:] = diff[_LAG:] > diff[:-_LAG]
    codes = (bits.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1).astype(np.uint32)
    valid = loud.copy()
    valid[_LAG:] &= loud[:-_LAG]
    valid[:_LAG] = False
    codes[~valid] = 0
    coarse = energies[:, : 2 * _COARSE].reshape(hops, _COARSE, 2).sum(axis=2)
    return codes, np.log10(coarse + 1e-10).astype(np.float32)


def _band_energies(audio: np.ndarray, hop: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(energies [n, 33] in bands `_BANDS`, loud bool [n]) of Hann windows starting every `hop` samples."""
    win = round(_WINDOW_S * SAMPLE_RATE)
    nfft = 1 << (win - 1).bit_length()
    window = np.hanning(win).astype(np.float32)
    edges = np.searchsorted(np.fft.rfftfreq(nfft, 1 / SAMPLE_RATE), _BANDS)
    energies = np.empty((n, len(_BANDS) - 1))
    power = np.empty(n)
    for s in range(0, n, 1024):  # bounded memory: 1024 windows at a time
        k = np.arange(s, min(n, s + 1024))
        fr = audio[k[:, None] * hop + np.arange(win)[None]] * window
        spec = np.abs(np.fft.rfft(fr, nfft)) ** 2
        energies[k] = np.add.reduceat(spec, edges[:-1], axis=1)[:, : len(_BANDS) - 1]
        power[k] = np.mean(fr.astype(np.float64) ** 2, axis=1) / np.mean(window.astype(np.float64) ** 2)
    return energies, power > 10 ** (_SILENCE_DB / 10)


def _window_vectors(low_dct: np.ndarray, levels: np.ndarray | None, sound: np.ndarray | None, step_s: float,
                    window_s: float) -> np.ndarray:
    """float32 [windows, VECTOR_DIM]: per window of `window_s` (hop half of it; one window for a
    shorter video) the sound's coarse band levels (mean, spread and mean change over `_LAG` hops of
    log10 energy, over its non-silent hops) and the picture's mean low DCT terms."""
    steps = len(low_dct)
    span = max(1, round(window_s / step_s))
    starts = list(range(0, max(1, steps - span + 1), max(1, span // 2)))
    if starts[-1] + span < steps:
        starts.append(steps - span)
    out = np.zeros((len(starts), VECTOR_DIM), np.float32)
    for w, s in enumerate(starts):
        out[w, 3 * _COARSE :] = low_dct[s : s + span].mean(axis=0).ravel()
    if levels is None or sound is None:
        return out
    change = np.zeros_like(levels)
    change[_LAG:] = np.abs(levels[_LAG:] - levels[:-_LAG])
    for w, s in enumerate(starts):
        rows = slice(s * SOUND_PER_STEP, (s + span) * SOUND_PER_STEP)
        keep = sound[rows] != 0
        if keep.any():
            lv, ch = levels[rows][keep], change[rows][keep]
            out[w, : 3 * _COARSE] = np.concatenate([lv.mean(axis=0), lv.std(axis=0), ch.mean(axis=0)])
    return out


# ------------------------------------------------------------------------------------------------ match


@dataclass(frozen=True)
class Match:
    """Two fingerprints aligned. `offset_s`: where b's t=0 falls on a's clock (b trimmed by 2 s at the
    start: +2). `overlap_s`: the time both cover at that offset; `coverage`: overlap over the shorter
    video. `sound`, `picture`: fraction of hash bits that agree there (0.5 is chance; `sound` None when
    either has no sound track or too little sound in common); `picture` takes the best pair of scales.
    `picture_contrast`, only where the picture decides (else None): its agreement at the offset less its
    median over all offsets (near 0 when the picture does not change: a static shot matches anywhere).
    `score`: the deciding agreement (sound when present, else picture) as 2 * agreement - 1 in [0, 1]."""

    score: float
    offset_s: float
    overlap_s: float
    coverage: float
    picture: float
    picture_contrast: float | None
    sound: float | None


@dataclass(frozen=True)
class DuplicateConfig:
    """The decision rule (`is_duplicate`), measured by benchmarks/near_duplicates.py on generated clips.
    Sound: copies agree on >= 0.78 of the bits (worst: a trim half a hop off the grid; trim + crop +
    x265 + AAC 64k), other clips of the same voice on <= 0.68 at their best offset (short overlaps of
    unrelated speech reach that by chance): 0.73 is mid-way. Picture: copies (but one-sided crops) >= 0.90,
    other clips of a drawn speaker <= 0.87; a static shot's silent copy pins its offset by <= 0.10."""

    sound_threshold: float = 0.73
    picture_threshold: float = 0.88
    picture_contrast: float = 0.15
    min_overlap_s: float = 2.0
    min_coverage: float = 0.5


def is_duplicate(m: Match, cfg: DuplicateConfig = DuplicateConfig()) -> bool:
    """Copies of one clip: they overlap for `min_overlap_s` and `min_coverage` of the shorter one (a
    shared intro jingle does not make two episodes copies), and then with sound on both, the sound
    agrees (the picture cannot veto: a one-sided crop or an overlay lowers it, and the same speech
    under another picture is still the clip's speech); without, the picture agrees and pins the offset."""
    if m.overlap_s < cfg.min_overlap_s or m.coverage < cfg.min_coverage:
        return False
    if m.sound is not None:
        return m.sound >= cfg.sound_threshold
    return m.picture >= cfg.picture_threshold and (m.picture_contrast or 0.0) >= cfg.picture_contrast


def match(a: Fingerprint, b: Fingerprint, min_overlap_s: float = 2.0) -> Match:
    """Align b on a and measure how far they agree (see `Match`). The offset is the one with the
    strongest evidence (z-score of the agreeing bits over the common steps, at least `min_overlap_s`
    with at least half of it compared): by sound when both have enough, else by picture."""
    if abs(a.step_s - b.step_s) > 1e-9:
        raise ValueError(f"fingerprints on different grids ({a.step_s} s, {b.step_s} s steps)")
    step = a.step_s
    aligned = _sound_align(a.sound, b.sound, round(min_overlap_s / step * SOUND_PER_STEP))
    contrast: float | None = None
    if aligned is not None:
        sound, hops = aligned
        offset_s = hops * step / SOUND_PER_STEP
        shift = round(hops / SOUND_PER_STEP)
        pic = _picture_at(a.picture, b.picture, shift)
    else:
        sound = None
        pic, contrast, shift = _picture_align(a.picture, b.picture, max(1, round(min_overlap_s / step)))
        offset_s = shift * step
    na, nb = len(a.picture), len(b.picture)
    overlap = max(0, min(na, nb + shift) - max(0, shift)) * step
    deciding = sound if sound is not None else pic
    return Match(score=float(np.clip(2 * deciding - 1, 0, 1)), offset_s=float(offset_s), overlap_s=float(overlap),
                 coverage=overlap / (min(na, nb) * step), picture=pic, picture_contrast=contrast, sound=sound)


def _sound_align(a: np.ndarray | None, b: np.ndarray | None, min_hops: int) -> tuple[float, int] | None:
    """(agreement, shift in hops of b's first hop on a) at the best offset, None without enough sound."""
    if a is None or b is None:
        return None
    agree, valid = _correlate(a, b, 32)
    d = _best_offset(agree, valid, len(a), len(b), max(1, min_hops), 32 * max(1, min_hops) // 2)
    return None if d is None else (float(agree[d] / valid[d]), d - (len(b) - 1))


def _signs(codes: np.ndarray, bits: int) -> np.ndarray:
    """float32 [n, bits]: +1 / -1 per bit of each code, 0 for code 0 (nothing to compare)."""
    b = (codes.astype(np.uint64)[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    return (2.0 * b - 1.0).astype(np.float32) * (codes != 0)[:, None]


def _correlate(a: np.ndarray, b: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(agreeing bits, compared bits) per shift of the code sequence b along a, shift = index - (len(b) - 1)
    (b's first step on a's steps), by FFT over all bit planes at once."""
    import scipy.fft  # ~0.3 s to import: only where a fingerprint is computed

    n = len(a) + len(b) - 1
    size = scipy.fft.next_fast_len(n, real=True)

    def xcorr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        spec = scipy.fft.rfft(x, size, axis=0) * scipy.fft.rfft(y[::-1], size, axis=0)
        return np.rint(scipy.fft.irfft(spec.sum(axis=1), size)[:n])

    both = bits * np.maximum(xcorr((a != 0)[:, None].astype(np.float32), (b != 0)[:, None].astype(np.float32)), 0)
    return (both + xcorr(_signs(a, bits), _signs(b, bits))) / 2, both


def _overlaps(n_shifts: int, na: int, nb: int) -> np.ndarray:
    shift = np.arange(n_shifts) - (nb - 1)
    return np.minimum(na, nb + shift) - np.maximum(0, shift)


def _best_offset(agree: np.ndarray, valid: np.ndarray, na: int, nb: int, min_steps: int,
                 min_valid: int) -> int | None:
    """Index of the shift with the highest z-score among those overlapping >= min_steps steps (or all
    of the shorter) with >= min_valid compared bits; None if there is none."""
    ok = (_overlaps(len(agree), na, nb) >= min(min_steps, na, nb)) & (valid >= max(1, min_valid))
    if not ok.any():
        return None
    z = np.where(ok, (2 * agree - valid) / np.sqrt(np.maximum(valid, 1)), -np.inf)
    return int(np.argmax(z))


def _contrast(agree: np.ndarray, valid: np.ndarray, d: int, na: int, nb: int, min_steps: float) -> float:
    """Agreement at shift index d less the median agreement over all shifts overlapping >= min_steps."""
    ok = (_overlaps(len(agree), na, nb) >= min(min_steps, na, nb)) & (valid > 0)
    return float(agree[d] / valid[d] - np.median(agree[ok] / valid[ok]))


def _picture_at(a: np.ndarray, b: np.ndarray, shift: int) -> float:
    """Agreement of the best pair of scales with b's first step on a's step `shift` (0.5: none compared)."""
    lo, hi = max(0, shift), min(len(a), len(b) + shift)
    sa, sb = a[lo:hi], b[lo - shift : hi - shift]  # [steps, scales]
    both = (sa[:, :, None] != 0) & (sb[:, None, :] != 0)
    if not both.any():
        return 0.5
    same = 64 - np.bitwise_count(sa[:, :, None] ^ sb[:, None, :]).astype(np.int64)
    n = both.sum(axis=0)
    return float(np.max(np.where(n > 0, (same * both).sum(axis=0) / np.maximum(64 * n, 1), 0.0)))


def _picture_align(a: np.ndarray, b: np.ndarray, min_steps: int) -> tuple[float, float, int]:
    """(agreement, contrast, shift) at the best offset and pair of scales by picture alone."""
    best, best_z = (0.5, 0.0, 0), -np.inf
    for i in range(len(SCALES)):
        for j in range(len(SCALES)):
            agree, valid = _correlate(a[:, i], b[:, j], 64)
            d = _best_offset(agree, valid, len(a), len(b), min_steps, 64 * min_steps // 2)
            if d is None:
                continue
            z = (2 * agree[d] - valid[d]) / np.sqrt(valid[d])
            if z > best_z:
                best_z = z
                best = (float(agree[d] / valid[d]), _contrast(agree, valid, d, len(a), len(b), min_steps),
                        d - (len(b) - 1))
    return best


# ------------------------------------------------------------------------------------------- duplicates


def candidate_pairs(
    vectors: np.ndarray,
    owners: np.ndarray,
    has_sound: np.ndarray,
    *,
    k: int = 16,
    min_similarity: float = 0.5,
    nprobe: int = 16,
    exact_below: int = 100_000,
) -> np.ndarray:
    """Candidate copies: int64 [pairs, 2] of video indices (i < j, unique, sorted) whose window vectors
    are among each other's `k` nearest with cosine >= `min_similarity` after `_standardised` (between
    a video with sound and one without, the cosine of their picture parts). `clustering.knn` searches:
    exactly below `exact_below` vectors, else an inverted file of ~500 vectors per list, `nprobe` lists
    per query. On 2 cores (benchmarks/near_duplicates.py) exact finds 98 % of planted copies at 100k in
    ~11 s; at 1M the inverted file finds 90 % in ~150 s (nprobe 6: 83 % in ~75 s) where exact would take
    ~20 min. `vectors` [windows, VECTOR_DIM] belong to videos `owners` [windows]; `has_sound` [videos].
    Memory: ~2 KiB per window vector at the peak (raw and standardised copies, faiss's, the neighbours)."""

    if len(vectors) < 2:
        return np.zeros((0, 2), np.int64)
    graph = GraphConfig(k=k, nprobe=nprobe, exact_below=exact_below)
    idx, sims = knn(_standardised(vectors, has_sound[owners]), k, graph)
    a = np.repeat(owners, idx.shape[1])
    b = owners[np.maximum(idx, 0)].ravel()
    # A vector without sound is its picture part alone: against one with sound, cosine = picture's x its weight.
    floor = np.where(has_sound[a] == has_sound[b], min_similarity, min_similarity * np.sqrt(1 - SOUND_WEIGHT))
    keep = (idx.ravel() >= 0) & (sims.ravel() >= floor) & (a != b)
    return np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)[keep], axis=0)


def duplicate_pairs(
    fingerprints: Sequence[Fingerprint],
    *,
    k: int = 16,
    min_similarity: float = 0.5,
    nprobe: int = 16,
    cfg: DuplicateConfig = DuplicateConfig(),
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    exhaustive_below: int = 200,
) -> list[tuple[int, int, Match]]:
    """Verified copies (i, j, match), i < j, sorted: `candidate_pairs` each checked by `match` and
    `is_duplicate`. `fingerprints` may be a lazy sequence (rows read from a manifest on demand): the
    vectors are read once, up front (or given as `vectors`: (window vectors, their owners, has_sound per
    fingerprint), see `candidate_pairs`), and the hashes only of candidate pairs. Below `exhaustive_below`
    fingerprints every pair is verified (at most ~20k matches, seconds): the vectors are standardised over the
    set, which a handful of videos, copies among them, describes too poorly (a trimmed copy of real speech
    among 8 videos: cosine -0.29 to its original)."""
    n = len(fingerprints)
    if n < exhaustive_below:
        fingerprints = [fingerprints[i] for i in range(n)]  # each read once
        every = [(i, j, match(fingerprints[i], fingerprints[j], cfg.min_overlap_s))
                 for i in range(n) for j in range(i + 1, n)]
        return [(i, j, m) for i, j, m in every if is_duplicate(m, cfg)]
    if vectors is None:
        vecs, owners, has_sound = [], [], np.zeros(n, bool)
        for i in range(n):
            fp = fingerprints[i]
            vecs.append(fp.vectors)
            owners.append(np.full(len(fp.vectors), i, np.int64))
            has_sound[i] = fp.sound is not None and bool(fp.sound.any())
        vectors = (np.concatenate(vecs) if vecs else np.zeros((0, VECTOR_DIM), np.float32),
                   np.concatenate(owners) if owners else np.zeros(0, np.int64), has_sound)
    if n < 2:
        return []
    out = []
    for i, j in candidate_pairs(*vectors, k=k, min_similarity=min_similarity, nprobe=nprobe).tolist():
        m = match(fingerprints[i], fingerprints[j], cfg.min_overlap_s)
        if is_duplicate(m, cfg):
            out.append((i, j, m))
    return out


def _standardised(x: np.ndarray, with_sound: np.ndarray) -> np.ndarray:
    """Each dimension standardised over the set (its sound part over the vectors with sound; zero
    without), each part scaled to its weight, rows L2-normalised: inner product = weighted cosine."""
    x = x.astype(np.float32, copy=True)
    parts = ((slice(0, 3 * _COARSE), with_sound, SOUND_WEIGHT),
             (slice(3 * _COARSE, VECTOR_DIM), None, 1 - SOUND_WEIGHT))
    for cols, rows, weight in parts:
        sel = x[rows, cols] if rows is not None else x[:, cols]
        if len(sel):
            sub = (x[:, cols] - sel.mean(axis=0)) / np.maximum(sel.std(axis=0), 1e-6)
            if rows is not None:
                sub[~rows] = 0
            norms = np.linalg.norm(sub, axis=1, keepdims=True)
            x[:, cols] = sub / np.maximum(norms, 1e-12) * np.sqrt(weight)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def duplicate_groups(
    ids: Sequence[str],
    fingerprints: Sequence[Fingerprint],
    *,
    k: int = 16,
    min_similarity: float = 0.5,
    nprobe: int = 16,
    cfg: DuplicateConfig = DuplicateConfig(),
    exhaustive_below: int = 200,
) -> list[list[str]]:
    """Groups of copies (connected components of the verified pairs, union-find), each sorted, listed by
    their smallest id (the group's id); videos without a copy are left out."""
    if len(ids) != len(fingerprints):
        raise ValueError(f"{len(ids)} ids for {len(fingerprints)} fingerprints")
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in duplicate_pairs(fingerprints, k=k, min_similarity=min_similarity, nprobe=nprobe, cfg=cfg,
                                   exhaustive_below=exhaustive_below):
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(ids):
        groups.setdefault(root(i), []).append(name)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)
