"""The DNSMOS speech-quality backend on real speech: pyannote.audio's sample recording, clean and degraded."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ltxa_data.backends.speech_quality import FILES, SILENCE_SCORE, Dnsmos, SpeechScores, dnsmos_files
from ltxa_data.errors import SystemicError

RATE = 16000
STARTS = (21.8, 23.0, 24.2)
"""3.5 s windows inside the second speaker's longest solo turn (21.78-27.85 s in sample.rttm)."""


def _sample() -> np.ndarray:
    spec = importlib.util.find_spec("pyannote.audio")
    wav = Path(spec.origin).parent / "sample" / "sample.wav" if spec is not None and spec.origin else None
    if wav is None or not wav.is_file():
        pytest.skip("pyannote.audio's sample/sample.wav is not installed")
    import soundfile as sf

    x, sr = sf.read(str(wav), dtype="float64")
    assert sr == RATE and x.ndim == 1
    return x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _at(x: np.ndarray, like: np.ndarray, ratio_db: float) -> np.ndarray:
    """`x` scaled to `ratio_db` below the RMS of `like`."""
    return x * _rms(like) / _rms(x) / 10 ** (ratio_db / 20)


def _chords(n: int) -> np.ndarray:
    """A music-like bed: a triad of 3-harmonic tones changing every second."""
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for k, root in enumerate((261.6, 220.0, 174.6, 196.0)):
        part = (t >= k) & (t < k + 1)
        out[part] = sum(np.sin(2 * np.pi * root * r * h * t[part]) / h for r in (1, 1.26, 1.5) for h in (1, 2, 3))
    return out


@pytest.fixture(scope="module")
def scorer() -> Dnsmos:
    return Dnsmos(personalized=True, threads=1, batch_size=4)


@pytest.fixture(scope="module")
def clean() -> list[np.ndarray]:
    x = _sample()
    return [x[int(s * RATE): int(s * RATE) + int(3.5 * RATE)].astype(np.float32) for s in STARTS]


@pytest.fixture(scope="module")
def clean_scores(scorer: Dnsmos, clean: list[np.ndarray]) -> list[SpeechScores]:
    return scorer.score(clean)


def test_noise_and_music_score_below_clean_speech(scorer, clean, clean_scores) -> None:
    rng = np.random.default_rng(0)
    noisy = [w + _at(rng.standard_normal(w.size), w, 0) for w in clean]
    music = [w + _at(_chords(w.size), w, 0) for w in clean]
    got = scorer.score(noisy + music)
    for c, n, m in zip(clean_scores, got[: len(clean)], got[len(clean):], strict=True):
        assert 1 <= c.ovrl <= 5 and 1 <= c.bak <= 5 and 1 <= c.sig <= 5 and c.povrl is not None
        assert c.ovrl > 2.8, c  # clean real speech
        assert c.ovrl > n.ovrl + 0.5, (c, n)
        assert c.bak > m.bak + 0.5, (c, m)


def test_batches_score_as_one_at_a_time(scorer, clean, clean_scores) -> None:
    alone = [scorer.score([w])[0] for w in clean]
    for a, b in zip(alone, clean_scores, strict=True):
        for f in ("sig", "bak", "ovrl", "povrl"):
            assert abs(getattr(a, f) - getattr(b, f)) < 1e-3, (f, a, b)


def test_level_does_not_change_the_scores(scorer, clean) -> None:
    w = clean[0].astype(np.float64)
    loud, quiet = (w * 10 ** (db / 20) / _rms(w) for db in (-10, -35))
    a, b = scorer.score([loud.astype(np.float32), quiet.astype(np.float32)])
    for f in ("sig", "bak", "ovrl", "povrl"):
        assert abs(getattr(a, f) - getattr(b, f)) < 0.01, (f, a, b)


def test_missing_model_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SystemicError) as e:
        dnsmos_files(tmp_path)
    assert str(tmp_path) in str(e.value) and f" {FILES['dnsmos']}" in str(e.value)
    assert FILES["pdnsmos"] in str(e.value) and "pip install" in str(e.value)
    (tmp_path / FILES["dnsmos"]).parent.mkdir()
    (tmp_path / FILES["dnsmos"]).touch()
    assert set(dnsmos_files(tmp_path, personalized=False)) == {"dnsmos"}
    with pytest.raises(SystemicError, match=re.escape(FILES["pdnsmos"])):
        dnsmos_files(tmp_path, personalized=True)
    assert all(p.is_file() for p in dnsmos_files(None).values())


def test_a_missing_onnxruntime_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SystemicError, match="pip install onnxruntime"):
        dnsmos_files(None)


def test_silence_scores_the_bottom_of_the_scale(scorer, clean, clean_scores) -> None:
    silent = np.zeros(int(3.5 * RATE), dtype=np.float32)
    low = SpeechScores(SILENCE_SCORE, SILENCE_SCORE, SILENCE_SCORE, SILENCE_SCORE)
    assert scorer.score([silent]) == [low]
    s, c = scorer.score([silent, clean[0]])
    assert s == low and abs(c.ovrl - clean_scores[0].ovrl) < 1e-3
    assert scorer.score([]) == []
    with pytest.raises(ValueError, match="16000"):
        scorer.score([clean[0]], sample_rate=8000)
