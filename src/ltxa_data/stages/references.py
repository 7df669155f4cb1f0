"""references: candidate 3.5 s windows of one identified speaker's voice, with their loudness.

The choice of which reference goes with which target (same identity, different video) is made
by the pairs stage (`stages/pairs.py`, `choose_references`)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ..ids import child_id
from ..media import read_audio
from ..recipe import AUDIO_SAMPLE_RATE
from ..windows import single_speaker_windows
from .speaker_windows import SpeakerWindowStage, speaker_spans


def dbfs(x: np.ndarray) -> tuple[float, float]:
    """(RMS, peak) level of a signal in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    to_db = lambda v: 20 * math.log10(v) if v > 0 else -math.inf  # noqa: E731
    return to_db(rms), to_db(peak)


class ReferencesStage(SpeakerWindowStage):
    name = "references"
    sections = ("references",)

    def windows_of(self, video: dict, turns: pl.DataFrame, identities: pl.DataFrame) -> list[dict]:
        cfg = self.recipe.references
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=1)[0]
        n_len = round(cfg.duration_s * AUDIO_SAMPLE_RATE)
        steps = math.floor((video["duration_s"] - cfg.duration_s) / cfg.stride_s + 1e-6)
        starts = [round(k * cfg.stride_s, 6) for k in range(steps + 1)] if steps >= 0 else []
        rows = []
        for ident in identities.sort("speaker").iter_rows(named=True):
            own, others = speaker_spans(turns, ident["speaker"])
            for w in single_speaker_windows(own, others, starts, cfg.duration_s, cfg.min_speech_ratio,
                                            cfg.max_other_speech_s, cfg.max_per_video):
                a = round(w.start * AUDIO_SAMPLE_RATE)
                rms, peak = dbfs(audio[a : a + n_len])
                if rms < cfg.min_rms_dbfs:
                    continue
                rows.append(dict(
                    reference_id=child_id(video["video_id"], ident["speaker"], w.start), video_id=video["video_id"],
                    voice_id=ident["voice_id"], identity_id=ident["identity_id"], start_s=w.start,
                    duration_s=cfg.duration_s, speech_ratio=w.speech_ratio, rms_dbfs=round(rms, 3),
                    peak_dbfs=round(peak, 3), status="ok", error=None))
        if not rows:
            return [self.no_window(video, "skipped", f"no {cfg.duration_s} s window where one speaker talks "
                                   f"≥ {cfg.min_speech_ratio:.0%}, alone and above {cfg.min_rms_dbfs} dBFS")]
        return rows

