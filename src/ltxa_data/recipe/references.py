"""The references section: reference windows and the thresholds they must meet."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import StrictModel
from .quality import ReferenceSpeechQuality


class ReferencesConfig(StrictModel):
    """Reference windows and the quality thresholds they must meet. Levels are measured on the 16 kHz
    audio a shard carries: loudness and SNR on the mono mix, peak and clipping on both channels. A
    candidate window that fails a threshold is counted, per video, in the `rejected_by` column."""

    duration_s: float = Field(default=3.5, ge=0.4, description="Reference window length (at least one 0.4 s "
                              "BS.1770 loudness block).")
    min_speech_ratio: float = Field(default=0.7, ge=0, le=1, description="Fraction of the window the speaker "
                                    "must be talking.")
    max_other_speech_s: float = Field(default=0.0, ge=0, description="Speech of any other speaker tolerated.")
    stride_s: float = Field(default=0.5, gt=0, description="Candidate window step.")
    max_per_video: int = Field(default=8, ge=1, description="At most this many references per speaker and video.")
    placement: Literal["head", "densest"] = Field(
        default="densest", description="Which of the windows that pass every threshold are kept (non-overlapping, "
        "up to max_per_video): `head`: the earliest in the video; `densest`: the most speech energy (the "
        "speaker's speech power averaged over the whole window, so pauses count as silence).")
    min_lufs: float = Field(default=-45.0, description="Reject windows quieter than this integrated loudness "
                            "(ITU-R BS.1770-4 of the mono mix, LUFS); a silent window has -inf and is rejected.")
    max_lufs: float = Field(default=-8.0, description="Reject windows louder than this (LUFS): speech this loud "
                            "has almost always been limited hard or clipped.")
    max_peak_dbfs: float = Field(default=0.0, description="Reject windows whose sample peak exceeds this (dBFS, "
                                 "both channels, before gain); decoders can overshoot full scale, which the "
                                 "16-bit wav would clip.")
    max_clipped_fraction: float = Field(default=0.001, ge=0, le=1, description="Reject windows with more than "
                                        "this fraction of samples at full scale (|x| >= 0.999, both channels).")
    min_snr_db: float = Field(default=10.0, description="Reject windows whose SNR estimate is below this (dB): "
                              "the speaker's speech power over the mean power of the quietest 10% of 20 ms "
                              "frames. Speech without any pause reads low (clean, ~15 dB), hence a low "
                              "default; see `analysis/audio_quality.py`.")
    normalize_lufs: float | None = Field(default=None, description="Loudness (LUFS, mono mix) each reference wav "
                                         "is brought to when a shard renders it; null leaves levels as they are.")
    peak_ceiling_dbfs: float = Field(default=-1.0, le=0, description="With normalize_lufs: the gain is lowered "
                                     "so that no sample exceeds this (dBFS); the references table says when "
                                     "it did (`gain_limited`).")
    speech_quality: ReferenceSpeechQuality = Field(default=ReferenceSpeechQuality(), description="The learned "
                                                "speech-quality score of each reference window and its floors.")
    max_scored_per_video: int = Field(default=16, ge=1, description="With a learned score: at most this many windows "
                                      "per speaker and video (those that pass every other threshold, in `placement` "
                                      "order) are scored, in one batch; those under a floor are dropped.")
