"""Speech quality: Microsoft's DNSMOS P.835 (SIG, BAK, OVRL, 1-5) and the personalized DNSMOS OVRL, offline.

The models are the ONNX files the speechmos wheel ships (MIT; its Python wrapper, which imports librosa and
requests, is not used): dnsmos_models/ and pdnsmos_models/sig_bak_ovr.onnx. Each takes [N, 144160] raw 16 kHz
waveform (9.01 s) and gives raw SIG, BAK, OVRL, calibrated with Microsoft's polynomials (the personalized model has
its own). They run on onnxruntime's CPU provider, `batch_size` inputs per call: about 0.45 s of CPU per input and
model on one thread whatever the batch (0.9 s per clip with `personalized`); batching leaves the scores unchanged.

How a clip is prepared, measured by benchmarks/speech_quality_real.py on pyannote.audio's sample speech:

- Level. DNSMOS reads level: on 3.5 s clean windows scaled to an RMS of -5, -10, -20, -30, -40, -50 dBFS the OVRL is
  2.87, 2.92, 2.98, 3.16, 2.99, 2.58 and the personalized OVRL 1.58, 2.41, 3.55, 3.83, 3.81, 3.58. Every clip is
  therefore brought to TARGET_RMS_DBFS (-30 dBFS RMS, the top of both plateaus), the gain lowered where a sample
  would pass PEAK_CEILING; scores are then the same at any level (-10 and -35 dBFS windows: within 1e-5).
- Length. A clip up to 9.01 s is repeated end to end to exactly 9.01 s and scored once. speechmos doubles a short
  clip until it reaches 9.01 s and averages every 1 s hop: 5 inferences for a 3.5 s window, whose mean the single
  inference misses by 0.025 OVRL on average (0.09 at most) over clean, reverberant, music, noise and two-talker
  windows; from 4.5 s (4.84 s target windows) its preparation is the same single input. A clip longer than 9.01 s
  scores the mean over every 1 s hop of 9.01 s that fits, as speechmos does. Short clips read lower: windows of 1,
  2, 3.5 and 4.84 s of one solo turn score OVRL 2.57, 2.87, 3.18, 3.22 (so floors hold for one window length).
- Silence. A clip whose RMS is below SILENCE_RMS (digital silence) is not run and scores SILENCE_SCORE (1.0)
  throughout: the model reads zeros as SIG 2.5, BAK 3.5, OVRL 1.8, which a BAK floor would pass. A clip of a noise
  floor alone is brought up to the target level like any other and reads as noise (OVRL about 1.1).

Mean scores of 3.5 s windows, OVRL / personalized OVRL (SIG, BAK: the benchmark): clean 3.11 / 3.82; white noise
at 20, 10, 0 dB SNR 2.87 / 3.20, 2.22 / 2.51, 1.26 / 2.01; a music bed 10 and 0 dB under the speech 2.66 / 2.80,
1.24 / 2.30; reverberation RT60 0.3 and 1.0 s 2.02 / 2.26, 1.11 / 2.12; a second talker 14 and 6 dB under 2.74 /
2.54, 2.40 / 2.31; telephone band 2.99 / 3.81; Opus 6 kbit/s 2.64 / 2.94; MP3 16 kbit/s 3.05 / 3.70.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import SystemicError

SAMPLE_RATE = 16000
INPUT_SAMPLES = 144160
"""9.01 s: the models' fixed input length."""
HOP_SAMPLES = SAMPLE_RATE
"""Hop between the segments of a clip longer than the input."""
TARGET_RMS_DBFS = -30.0
"""The RMS level every clip is brought to before scoring."""
PEAK_CEILING = 1.0
"""The gain that reaches TARGET_RMS_DBFS is lowered so that no sample exceeds this magnitude."""
SILENCE_RMS = 1e-6
"""A clip whose RMS is below this (-120 dBFS) is digital silence: scored without running the model."""
SILENCE_SCORE = 1.0
"""Every score of a silent clip: the bottom of the 1-5 scale."""
FILES = {"dnsmos": "dnsmos_models/sig_bak_ovr.onnx", "pdnsmos": "pdnsmos_models/sig_bak_ovr.onnx"}

# The polynomial calibration of the raw outputs (SIG, BAK, OVRL), as in Microsoft's DNSMOS scripts: the P.835
# model's coefficients, and the personalized model's.
_CALIBRATION = {
    "dnsmos": ((-0.08397278, 1.22083953, 0.0052439), (-0.13166888, 1.60915514, -0.39604546),
               (-0.06766283, 1.11546468, 0.04602535)),
    "pdnsmos": ((-0.01019296, 0.02751166, 1.19576786, -0.24348726),
                (-0.04976499, 0.44276479, -0.1644611, 0.96883132),
                (-0.00533021, 0.005101, 1.18058466, -0.11236046)),
}


@dataclass(frozen=True)
class SpeechScores:
    """The calibrated scores of one clip, each on the 1-5 MOS scale."""

    sig: float
    """DNSMOS P.835 SIG: the speech signal itself."""
    bak: float
    """DNSMOS P.835 BAK: the background (noise, music)."""
    ovrl: float
    """DNSMOS P.835 OVRL: overall."""
    povrl: float | None
    """Personalized DNSMOS OVRL, which also drops under an interfering talker; None when not scored."""


class SpeechQualityScorer(Protocol):
    """Scores mono 16 kHz speech clips (each at least 0.4 s): one `SpeechScores` per clip."""

    name: str

    def score(self, clips: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> list[SpeechScores]: ...


def _speechmos_dir() -> Path | None:
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def dnsmos_files(model: Path | None, personalized: bool = True) -> dict[str, Path]:
    """The model files (`dnsmos`, and `pdnsmos` when personalized) in `model`, or in the installed speechmos
    package when None. Checks that onnxruntime imports and that the files exist, without loading them;
    raises SystemicError saying what to install or set."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise SystemicError(f"speech_quality: the dnsmos backend needs onnxruntime, which does not import ({e}); "
                            "pip install onnxruntime") from e
    if model is None:
        folder = _speechmos_dir()
        if folder is None:
            raise SystemicError("speech_quality: the dnsmos backend's models come from the speechmos package, "
                                "which is not installed; pip install speechmos==0.0.1.1, or set "
                                "speech_quality.model to a folder holding " + " and ".join(FILES.values()))
    else:
        folder = Path(model).expanduser()
    wanted = {k: v for k, v in FILES.items() if personalized or k == "dnsmos"}
    files = {k: folder / v for k, v in wanted.items()}
    missing = [wanted[k] for k, p in files.items() if not p.is_file()]
    if missing:
        hint = ("reinstall speechmos (pip install --force-reinstall speechmos==0.0.1.1)" if model is None else
                "copy them there from the speechmos package (pip install speechmos==0.0.1.1), or leave "
                "speech_quality.model unset to use the installed package's")
        raise SystemicError(f"speech_quality: the DNSMOS model folder {folder} lacks {', '.join(missing)}; {hint}")
    return files


def normalise_level(clip: np.ndarray) -> np.ndarray | None:
    """`clip` (float64) brought to TARGET_RMS_DBFS RMS, the gain lowered so the peak stays within PEAK_CEILING;
    None for digital silence (RMS below SILENCE_RMS)."""
    x = np.asarray(clip, dtype=np.float64)
    rms = math.sqrt(float(np.mean(np.square(x)))) if x.size else 0.0
    if not rms >= SILENCE_RMS:  # also NaN
        return None
    gain = min(10 ** (TARGET_RMS_DBFS / 20) / rms, PEAK_CEILING / float(np.max(np.abs(x))))
    return x * gain


def segments(clip: np.ndarray) -> np.ndarray:
    """The model inputs of one (level-normalised) clip, [K, INPUT_SAMPLES] float32: a clip up to 9.01 s is
    repeated end to end to 9.01 s (one input); a longer clip gives one input per 1 s hop that fits."""
    x = np.asarray(clip, dtype=np.float32)
    if x.shape[0] <= INPUT_SAMPLES:
        return np.resize(x, INPUT_SAMPLES)[None, :]
    starts = range(0, x.shape[0] - INPUT_SAMPLES + 1, HOP_SAMPLES)
    return np.stack([x[s: s + INPUT_SAMPLES] for s in starts])


def calibrate(raw: np.ndarray, which: str) -> np.ndarray:
    """Calibrated (SIG, BAK, OVRL) from the raw [N, 3] outputs of model `which` (`dnsmos` or `pdnsmos`)."""
    return np.stack([np.polyval(c, raw[:, i]) for i, c in enumerate(_CALIBRATION[which])], axis=1)


class Dnsmos:
    """DNSMOS P.835 and (with `personalized`) personalized DNSMOS on onnxruntime's CPU provider."""

    name = "dnsmos"

    def __init__(self, model: Path | None = None, personalized: bool = True, threads: int = 1,
                 batch_size: int = 8) -> None:
        import onnxruntime as ort

        self.personalized = personalized
        self.batch_size = max(1, int(batch_size))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = int(threads)
        self._sessions: dict[str, Any] = {
            k: ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
            for k, p in dnsmos_files(model, personalized).items()}

    def raw(self, inputs: np.ndarray, which: str = "dnsmos") -> np.ndarray:
        """Raw [N, 3] outputs of model `which` on [N, INPUT_SAMPLES] inputs, run `batch_size` at a time."""
        sess = self._sessions[which]
        name = sess.get_inputs()[0].name
        out = [sess.run(None, {name: np.ascontiguousarray(inputs[i: i + self.batch_size], dtype=np.float32)})[0]
               for i in range(0, inputs.shape[0], self.batch_size)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 3))

    def score(self, clips: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> list[SpeechScores]:
        """One `SpeechScores` per clip (mono float audio at 16 kHz); see the module docstring for how a clip is
        prepared. A digitally silent clip scores SILENCE_SCORE throughout."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"DNSMOS scores {SAMPLE_RATE} Hz audio, not {sample_rate} Hz")
        owner: list[int] = []
        parts: list[np.ndarray] = []
        for i, clip in enumerate(clips):
            if np.ndim(clip) != 1:
                raise ValueError(f"clip {i}: expected mono audio (1-D), got shape {np.shape(clip)}")
            x = normalise_level(clip)
            if x is not None:
                seg = segments(x)
                parts.append(seg)
                owner.extend([i] * seg.shape[0])
        n = len(clips)
        if not parts:
            return [SpeechScores(SILENCE_SCORE, SILENCE_SCORE, SILENCE_SCORE,
                                 SILENCE_SCORE if self.personalized else None)] * n
        inputs = np.concatenate(parts)
        idx = np.asarray(owner)
        counts = np.bincount(idx, minlength=n)
        means = {}
        for which in self._sessions:
            cal = calibrate(self.raw(inputs, which), which)
            sums = np.zeros((n, 3))
            np.add.at(sums, idx, cal)
            means[which] = sums / np.maximum(counts, 1)[:, None]
        out = []
        for i in range(n):
            if counts[i] == 0:
                out.append(SpeechScores(SILENCE_SCORE, SILENCE_SCORE, SILENCE_SCORE,
                                        SILENCE_SCORE if self.personalized else None))
                continue
            sig, bak, ovrl = (float(v) for v in means["dnsmos"][i])
            povrl = float(means["pdnsmos"][i, 2]) if self.personalized else None
            out.append(SpeechScores(sig, bak, ovrl, povrl))
        return out
