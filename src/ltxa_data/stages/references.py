"""references: 3.5 s windows of one identified speaker's voice that pass the recipe's quality
thresholds, with their measures and the gain that normalises them.

Every stride step is a candidate window for each identified speaker of a video. A candidate is
checked against the reference gates in a fixed order (`gates.REFERENCE_GATES`: another speaker,
speech ratio, loudness, clipping, peak, SNR) and counted under the first it fails; a kept window records
every gate it passed (`gates`); the counts of
a video are on each of its rows (`candidates`, `rejected_by`) and in the reason of its row when
none passes. Of the windows that pass, `placement` keeps up to `max_per_video` non-overlapping
ones per speaker: the earliest (`head`) or those with the most speech energy (`densest`).

Candidates are screened on one decode of the whole track; each kept window is then decoded again
exactly as the shard stage will cut it (a seek can move the resampler's phase) and measured on
those samples, so the recorded values are those of the audio the shard carries.

With a learned speech-quality backend (`references.speech_quality.backend: dnsmos`), up to
`max_scored_per_video` placed windows per speaker are scored in one batch, on the audio as the shard carries
it (after its gain); the DNSMOS floors are gates like the others, and of the windows that pass, the first
`max_per_video` in placement order are kept. A reference's `quality` (what pairs prefer) is then its DNSMOS
OVRL on a 0-1 scale, `(ovrl - 1) / (FULL_QUALITY_OVRL - 1)` capped at 1; with `snr`, speech ratio x SNR.

The choice of which reference goes with which target (same identity, different video) is made
by the pairs stage (`stages/pairs.py`, `choose_references`)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import polars as pl

from ..analysis.audio_quality import AudioQuality, apply_gain, measure, mono_mix, normalisation_gain
from ..analysis.windows import covered, non_overlapping, screen_window
from ..backends import load_speech_quality
from ..gates import REFERENCE_GATES, first_failed, required_gates
from ..ids import child_id
from ..media import read_audio
from ..recipe import AUDIO_SAMPLE_RATE, Recipe
from .speaker_windows import SpeakerWindowStage, speaker_spans
from .target_quality import DNSMOS_COLUMNS, scores_columns

SNR_FOR_FULL_QUALITY_DB = 20.0
"""SNR at and above which a reference's quality is limited only by its speech ratio."""
FULL_QUALITY_OVRL = 3.3
"""DNSMOS OVRL at and above which a reference's quality is 1 (clean real speech reads about 3.1-3.3)."""


@dataclass(frozen=True)
class Candidate:
    start: float
    speech_ratio: float
    quality: AudioQuality


def rounded(q: AudioQuality) -> AudioQuality:
    """Measures as stored (thresholds are applied to stored values, so `verify` sees what was decided)."""
    return AudioQuality(lufs=round(q.lufs, 3), peak_dbfs=round(q.peak_dbfs, 3),
                        clipped_fraction=round(q.clipped_fraction, 8), snr_db=round(q.snr_db, 3),
                        speech_energy_db=round(q.speech_energy_db, 3))


def quality_score(speech_ratio: float, snr_db: float, ovrl: float | None = None) -> float:
    """The preference score pairs use, 0-1: with a DNSMOS OVRL, (ovrl - 1) / (FULL_QUALITY_OVRL - 1) capped at
    1; else speech ratio x SNR (0 dB -> 0, >= 20 dB -> 1)."""
    if ovrl is not None:
        return round(min(max((ovrl - 1.0) / (FULL_QUALITY_OVRL - 1.0), 0.0), 1.0), 4)
    return round(speech_ratio * min(max(snr_db, 0.0), SNR_FOR_FULL_QUALITY_DB) / SNR_FOR_FULL_QUALITY_DB, 4)


def relative_spans(own: list[tuple[float, float]], start: float, length: float) -> list[tuple[float, float]]:
    """The spans that meet [start, start + length), in seconds from `start`."""
    return [(max(s, start) - start, min(e, start + length) - start) for s, e in own if e > start and s < start + length]


def preference(placement: str, start: float, speech_energy_db: float) -> tuple[float, float]:
    """A window's rank in `placement` order (smaller first): earliest (`head`) or most speech energy
    (`densest`)."""
    return (start, 0.0) if placement == "head" else (-speech_energy_db, start)


def place(cands: list[Candidate], placement: str, length: float, max_windows: int) -> list[Candidate]:
    """Up to `max_windows` non-overlapping candidates in `placement` order; returned by start."""
    return non_overlapping(sorted(cands, key=lambda c: preference(placement, c.start, c.quality.speech_energy_db)),
                           lambda c: c.start, length, max_windows)


AUDIO_GATES = ("min_lufs", "max_lufs", "max_clipped_fraction", "max_peak_dbfs", "min_snr_db")
"""The reference gates measured on a window's audio (the others are screened on its turns first)."""
LEARNED_GATES = ("min_ovrl", "min_sig", "min_bak", "min_povrl")
"""The reference gates of the learned speech-quality score (those the recipe turns on are recorded)."""


def audio_gates(q: AudioQuality, recipe: Recipe) -> list[dict]:
    """The records of the audio gates for a window's measures (each gate's `column` names its measure)."""
    return [REFERENCE_GATES[n].record(getattr(q, str(REFERENCE_GATES[n].column)), recipe) for n in AUDIO_GATES]


def rejection_summary(candidates: int, rejected: Counter[str], recipe: Recipe) -> str:
    """The reason of a video without a reference: how many candidates each threshold rejected."""
    cfg = recipe.references
    if not candidates:
        return f"shorter than one {cfg.duration_s} s window"
    parts = [f"{n} {g.threshold_of(recipe)}: {rejected[n]}" for n, g in REFERENCE_GATES.items() if rejected[n]]
    return (f"no {cfg.duration_s} s window passes the reference thresholds ({candidates} candidate windows; "
            f"rejected by {', '.join(parts) or 'none'})")


class ReferencesStage(SpeakerWindowStage):
    name = "references"
    table = "references"
    sections = ("references",)
    version = "4"  # 4: learned speech quality (dnsmos_*); 3: gate records (gates)

    def setup(self) -> None:
        self.speech = load_speech_quality(self.recipe, "references")
        self.learned_gates = [n for n in required_gates(REFERENCE_GATES, self.recipe) if n in LEARNED_GATES]

    def windows_of(self, video: dict, turns: pl.DataFrame, identities: pl.DataFrame) -> list[dict]:
        cfg = self.recipe.references
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=2)
        n_len = round(cfg.duration_s * AUDIO_SAMPLE_RATE)
        steps = math.floor((video["duration_s"] - cfg.duration_s) / cfg.stride_s + 1e-6)
        starts = [round(k * cfg.stride_s, 6) for k in range(steps + 1)] if steps >= 0 else []
        rejected: Counter[str] = Counter()
        candidates = 0
        rows = []
        for ident in identities.sort("speaker").iter_rows(named=True):
            own, others = speaker_spans(turns, ident["speaker"])
            passed = []
            for t in starts:
                candidates += 1
                broken, ratio = screen_window(own, others, t, cfg.duration_s, cfg.min_speech_ratio,
                                              cfg.max_other_speech_s)
                if broken:
                    rejected[broken] += 1
                    continue
                a = round(t * AUDIO_SAMPLE_RATE)
                q = rounded(measure(audio[:, a : a + n_len], AUDIO_SAMPLE_RATE,
                                    relative_spans(own, t, cfg.duration_s)))
                failed = first_failed(audio_gates(q, self.recipe))
                if failed:
                    rejected[failed["name"]] += 1
                    continue
                passed.append(Candidate(t, ratio, q))
            limit = cfg.max_per_video if self.speech is None else max(cfg.max_scored_per_video, cfg.max_per_video)
            placed = []  # in placement order: the first max_per_video that pass every gate are kept
            for c in sorted(place(passed, cfg.placement, cfg.duration_s, limit),
                            key=lambda c: preference(cfg.placement, c.start, c.quality.speech_energy_db)):
                # The exact samples the shard will carry (same call as its renderer).
                exact = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=2, start_s=c.start,
                                   duration_s=cfg.duration_s)
                q = rounded(measure(exact, AUDIO_SAMPLE_RATE, relative_spans(own, c.start, cfg.duration_s)))
                gates = [REFERENCE_GATES["max_other_speech_s"].record(
                             covered(others, c.start, c.start + cfg.duration_s), self.recipe),
                         REFERENCE_GATES["min_speech_ratio"].record(c.speech_ratio, self.recipe),
                         *audio_gates(q, self.recipe)]
                failed = first_failed(gates)
                if failed:
                    rejected[failed["name"]] += 1
                    continue
                gain, limited = (None, False) if cfg.normalize_lufs is None else normalisation_gain(
                    q.lufs, q.peak_dbfs, cfg.normalize_lufs, cfg.peak_ceiling_dbfs)
                placed.append((c, q, gain, limited, gates, mono_mix(apply_gain(exact, gain or 0.0))))
            scores = self.speech.score([p[5] for p in placed]) if self.speech is not None and placed else []
            kept = []
            for k, (c, q, gain, limited, gates, _) in enumerate(placed):
                s = scores[k] if scores else None
                learned = dict.fromkeys(DNSMOS_COLUMNS) if s is None else scores_columns(s)
                gates = gates + [g.record(learned[str(g.column)], self.recipe) for n, g in REFERENCE_GATES.items()
                                 if n in self.learned_gates]
                failed = first_failed(gates)
                if failed:
                    rejected[failed["name"]] += 1
                    continue
                kept.append(dict(
                    reference_id=child_id(video["video_id"], ident["speaker"], c.start), video_id=video["video_id"],
                    voice_id=ident["voice_id"], identity_id=ident["identity_id"], start_s=c.start,
                    duration_s=cfg.duration_s, speech_ratio=c.speech_ratio, lufs=q.lufs, peak_dbfs=q.peak_dbfs,
                    clipped_fraction=q.clipped_fraction, snr_db=q.snr_db, speech_energy_db=q.speech_energy_db,
                    **learned, quality=quality_score(c.speech_ratio, q.snr_db, learned.get("dnsmos_ovrl")),
                    gain_db=None if gain is None else round(gain, 3), gain_limited=limited, gates=gates,
                    status="ok", error=None))
            rows += sorted(kept[: cfg.max_per_video], key=lambda r: r["start_s"])
        counts = dict(candidates=candidates, rejected_by={n: rejected[n] for n in REFERENCE_GATES})
        if not rows:
            return [{**self.no_window(video, "skipped", rejection_summary(candidates, rejected, self.recipe)),
                     **counts}]
        return [{**r, **counts} for r in rows]
