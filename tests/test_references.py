"""Reference quality: loudness, SNR, clipping, thresholds, placement, normalisation and choice, on
audio generated here with known properties."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from ltxa_data.analysis.audio_quality import (
    apply_gain,
    clipped_fraction,
    integrated_lufs,
    measure,
    mono_mix,
    normalisation_gain,
    peak_dbfs,
)
from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe, ReferencesConfig
from ltxa_data.reporting.verify import check_references, verify_build
from ltxa_data.schemas import REFERENCE_THRESHOLDS, to_table
from ltxa_data.stages.pairs import choose_references
from ltxa_data.stages.references import ReferencesStage
from ltxa_data.stages.shard import reference_gain
from ltxa_data.storage import read_frame

from .conftest import copy_build

SR = 16000


def speech_like(seconds: float, rng: np.random.Generator, duty: float = 0.75, peak: float = 0.3) -> np.ndarray:
    """Syllables of a 140 Hz harmonic buzz (about 150-250 ms each) separated by silent gaps, so that
    speech fills about `duty` of the time; scaled so the buzz's envelope peaks at `peak`."""
    n = round(seconds * SR)
    t = np.arange(n) / SR
    carrier = sum(np.sin(2 * np.pi * k * 140.0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 50))
    carrier *= peak / np.max(np.abs(carrier))
    env, pos = np.zeros(n), 0
    while pos < n:
        syl = round(rng.uniform(0.12, 0.25) * SR)
        env[pos : pos + syl] = np.sqrt(np.hanning(syl))[: max(0, min(syl, n - pos))]
        pos += syl + round(syl * (1 - duty) / duty * rng.uniform(0.6, 1.4))
    return carrier * env


def with_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`x` plus white noise whose power is `snr_db` below the mean power of `x`."""
    return x + rng.standard_normal(x.size) * math.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))


# --- measures ----------------------------------------------------------------------------------


def test_lufs_of_a_1khz_sine_matches_bs1770() -> None:
    # BS.1770: a full-scale 1 kHz sine in one channel reads -3.01 LKFS; loudness follows the level.
    t = np.arange(3 * SR) / SR
    errors = []
    for amplitude in (1.0, 0.5, 0.1, 0.01):
        sine = amplitude * np.sin(2 * np.pi * 1000 * t)
        expected = 20 * math.log10(amplitude) - 3.01
        errors.append(abs(integrated_lufs(sine, SR) - expected))
        stereo = np.stack([sine, sine]).astype(np.float32)  # dual mono: the mono mix is the channel
        assert integrated_lufs(mono_mix(stereo), SR) == pytest.approx(integrated_lufs(sine, SR), abs=1e-4)
    assert max(errors) < 0.1, errors  # measured: 0.067 LU at 16 kHz (pyloudnorm designs K-weighting per rate)
    assert integrated_lufs(np.zeros(SR), SR) == -math.inf
    assert integrated_lufs(np.full(SR, 1e-6), SR) == -math.inf  # below the -70 LUFS absolute gate
    with pytest.raises(ValueError, match="shorter than"):
        integrated_lufs(np.ones(round(0.3 * SR)), SR)


def test_snr_estimate_orders_noise_levels_and_is_close_on_speech_with_pauses() -> None:
    rng = np.random.default_rng(0)
    clean = speech_like(3.5, rng)
    estimates = {}
    for snr in (0, 5, 10, 20, 30):
        estimates[snr] = measure(with_noise(clean, snr, rng)[None], SR, [(0.0, 3.5)]).snr_db
    clean_estimate = measure(clean[None], SR, [(0.0, 3.5)]).snr_db
    ordered = [estimates[s] for s in sorted(estimates)] + [clean_estimate]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered), estimates
    for snr in (5, 10, 20, 30):
        assert abs(estimates[snr] - snr) < 1.0, estimates  # measured: +0.1 to +0.3 dB
    assert clean_estimate > 60  # digitally silent pauses: noise taken as -100 dBFS
    # The documented limit: speech without pauses reads low even when clean.
    continuous = speech_like(3.5, np.random.default_rng(1), duty=1.0)
    assert 10 < measure(continuous[None], SR, [(0.0, 3.5)]).snr_db < 20


def test_clipping_and_peak() -> None:
    t = np.arange(round(3.5 * SR)) / SR
    sine = np.sin(2 * np.pi * 997 * t)
    clipped = np.clip(1.5 * sine, -1, 1)
    expected = 1 - 2 / math.pi * math.asin(0.999 / 1.5)  # time a sine of amplitude 1.5 spends above 0.999
    assert clipped_fraction(np.stack([clipped, clipped])) == pytest.approx(expected, abs=0.005)
    assert clipped_fraction(0.9 * sine) == 0.0
    assert peak_dbfs(0.5 * sine) == pytest.approx(-6.02, abs=0.01)
    assert peak_dbfs(np.stack([0.25 * sine, 0.5 * sine])) == pytest.approx(-6.02, abs=0.01)  # over both channels
    buf = io.BytesIO()  # a full-scale 16-bit wav (32767/32768) counts as clipped
    sf.write(buf, clipped, SR, format="WAV", subtype="PCM_16")
    buf.seek(0)
    back, _ = sf.read(buf)
    assert clipped_fraction(back) == pytest.approx(expected, abs=0.005)


# --- the stage: thresholds and placement ---------------------------------------------------------


def _stage(**cfg: Any) -> ReferencesStage:
    """A set-up stage gating on loudness, SNR and clipping (the learned speech quality is tested in
    tests/test_speech_quality.py: these tones are not speech)."""
    cfg.setdefault("speech_quality", {"backend": "snr"})
    stage = ReferencesStage(SimpleNamespace(references=ReferencesConfig(**cfg)))  # type: ignore[arg-type]
    stage.setup()
    return stage


def _windows(stage: ReferencesStage, folder: Path, name: str, audio: np.ndarray,
             turns: list[tuple[str, float, float]]) -> list[dict]:
    """The stage's rows for one audio file with the given turns; speaker S0 is the identified one."""
    path = folder / f"{name}.wav"
    sf.write(path, np.clip(audio, -1, 1), SR, subtype="PCM_16")
    video = dict(video_id=f"{name:0<16}"[:16], path=str(path), rel_path=path.name, duration_s=len(audio) / SR,
                 width=64, height=64)
    turn_df = pl.DataFrame([dict(video_id=video["video_id"], speaker=s, start_s=a, end_s=b, overlap=False)
                            for s, a, b in turns])
    ids = pl.DataFrame([dict(video_id=video["video_id"], speaker="S0", voice_id=f"{video['video_id']}-S0",
                             identity_id="id-x")])
    rows = stage.windows_of(video, turn_df, ids)
    to_table("references", rows)  # every row meets the schema
    return rows


def test_each_threshold_rejects_what_it_should_and_says_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    stage = _stage(max_peak_dbfs=-3.0)  # other thresholds at their defaults
    clean = speech_like(5.0, rng, peak=0.3)
    peaky = speech_like(5.0, rng, peak=0.3)
    peaky[:: SR // 2] = 0.9  # one -0.9 dBFS sample every 0.5 s: a peak, not clipping
    whole = [("S0", 0.0, 5.0)]
    cases = {
        "min_lufs": (speech_like(5.0, rng, peak=0.003), whole),  # about -58 LUFS
        "silent": (np.zeros(5 * SR), whole),
        "max_lufs": (0.99 * np.sin(2 * np.pi * 1000 * np.arange(5 * SR) / SR), whole),  # -3 LUFS
        "max_clipped_fraction": (np.clip(speech_like(5.0, rng, peak=1.0) * 1.6, -1, 1), whole),
        "max_peak_dbfs": (peaky, whole),
        "min_snr_db": (with_noise(clean, 3.0, rng), whole),
        "max_other_speech_s": (clean, [*whole, ("S1", 3.0, 3.2)]),  # S1 talks in every window
        "min_speech_ratio": (clean, [("S0", 0.0, 1.0)]),
    }
    for name, (audio, turns) in cases.items():
        rows = _windows(stage, tmp_path, name, audio, turns)
        expected = "min_lufs" if name == "silent" else name
        assert len(rows) == 1 and rows[0]["status"] == "skipped", name
        assert rows[0]["candidates"] == 4, name  # (5 - 3.5) / 0.5 + 1 windows of one speaker
        assert rows[0]["rejected_by"] == {n: 4 if n == expected else 0 for n in REFERENCE_THRESHOLDS}, name
        assert rows[0]["error"].endswith(f"(4 candidate windows; rejected by {expected} "
                                         f"{getattr(stage.recipe.references, expected)}: 4)"), rows[0]["error"]
    rows = _windows(stage, tmp_path, "clean", clean, whole)
    assert [r["status"] for r in rows] == ["ok"], "5 s hold one non-overlapping 3.5 s window"
    assert rows[0]["rejected_by"] == dict.fromkeys(REFERENCE_THRESHOLDS, 0) and rows[0]["candidates"] == 4
    r = rows[0]
    assert -30 < r["lufs"] < -15 and r["peak_dbfs"] < -3 and r["clipped_fraction"] == 0 and r["snr_db"] > 60
    assert r["quality"] == pytest.approx(r["speech_ratio"]) and r["gain_db"] is None and not r["gain_limited"]


def test_densest_placement_prefers_a_dense_stretch_over_an_earlier_sparse_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    audio = np.concatenate([speech_like(4.0, rng, duty=0.35), speech_like(4.0, rng, duty=0.95)])
    turns = [("S0", 0.0, 8.0)]  # a coarse turn: the speech ratio is 1.0 everywhere
    head = _windows(_stage(placement="head", max_per_video=1), tmp_path, "head", audio, turns)
    dense = _windows(_stage(placement="densest", max_per_video=1), tmp_path, "dense", audio, turns)
    assert head[0]["start_s"] == 0.0
    assert dense[0]["start_s"] >= 4.0
    assert head[0]["speech_ratio"] == dense[0]["speech_ratio"] == 1.0
    assert dense[0]["speech_energy_db"] > head[0]["speech_energy_db"] + 3  # measured: about 4 dB
    two = _windows(_stage(placement="densest", max_per_video=2), tmp_path, "two", audio, turns)
    assert len(two) == 2 and two[0]["start_s"] + 3.5 <= two[1]["start_s"], "non-overlapping, by start"


# --- normalisation ---------------------------------------------------------------------------------


def test_normalisation_lands_on_the_target_or_is_peak_limited_and_says_so() -> None:
    rng = np.random.default_rng(4)
    quiet = speech_like(3.5, rng, peak=0.05)
    before = integrated_lufs(quiet, SR)
    gain, limited = normalisation_gain(before, peak_dbfs(quiet), -23.0, -1.0)
    out = apply_gain(quiet[None], gain)
    assert not limited and gain > 0
    assert abs(integrated_lufs(out[0], SR) + 23.0) < 0.01  # measured: < 0.001 LU
    # A peaky window: reaching -23 LUFS would put its peak above -1 dBFS, so the ceiling binds.
    peaky = quiet.copy()
    peaky[SR] = 0.5
    gain, limited = normalisation_gain(integrated_lufs(peaky, SR), peak_dbfs(peaky), -23.0, -1.0)
    out = apply_gain(peaky[None], gain)
    assert limited and peak_dbfs(out) == pytest.approx(-1.0, abs=0.01)
    assert integrated_lufs(out[0], SR) < -23.5
    # The renderer never exceeds the planned peak, even if its samples peak higher than measured.
    ref = dict(gain_db=3.0, peak_dbfs=-6.0)
    rendered = np.stack([peaky, peaky]) * 10 ** ((-5.5 - peak_dbfs(peaky)) / 20)  # peaks 0.5 dB above -6
    shaped, applied = reference_gain(rendered, ref)
    assert applied == pytest.approx(2.5, abs=0.002) and peak_dbfs(shaped) == pytest.approx(-3.0, abs=0.01)
    assert reference_gain(rendered, dict(gain_db=None, peak_dbfs=-6.0))[1] is None


# --- choice of K references --------------------------------------------------------------------------


def test_choose_references_prefers_quality_spreads_over_videos_and_orders_by_quality() -> None:
    cands = [("a1", "vA", 1.0), ("b1", "vB", 0.9), ("b2", "vB", 0.5), ("c1", "vC", 0.6), ("d1", "vD", 0.95),
             ("t1", "vT", 1.0)]
    quality = {c[0]: c[2] for c in cands}
    for i in range(50):
        chosen = choose_references(f"t{i}", "vT", cands, 3, seed=0, quality_weight=4.0)
        ids = [c[0] for c in chosen]
        assert len(set(ids)) == 3 and "t1" not in ids
        assert len({v for _, v in chosen}) == 3, "one per video while there are videos left"
        assert [quality[r] for r in ids] == sorted((quality[r] for r in ids), reverse=True)
    assert choose_references("x", "vT", cands, 5, 0, 4.0) == choose_references("x", "vT", cands, 5, 0, 4.0)
    # Preference: weight quality ** 4 draws a 1.0 reference 16x as often as a 0.5 one.
    pair = [("hi", "vA", 1.0), ("lo", "vB", 0.5)]
    firsts = [choose_references(f"t{i}", "vT", pair, 1, 0, 4.0)[0][0] for i in range(2000)]
    assert 12 < firsts.count("hi") / firsts.count("lo") < 22
    uniform = [choose_references(f"t{i}", "vT", pair, 1, 0, 0.0)[0][0] for i in range(2000)]
    assert 0.85 < uniform.count("hi") / uniform.count("lo") < 1.15


# --- a build ---------------------------------------------------------------------------------------------


def test_candidate_counts_cover_every_stride_step_of_every_speaker(built: Recipe) -> None:
    refs = read_frame(built.manifests_dir, "references")
    videos = read_frame(built.manifests_dir, "videos", ok_only=True)
    ids = read_frame(built.manifests_dir, "identities", ok_only=True)
    duration = dict(zip(videos["video_id"], videos["duration_s"], strict=True))
    speakers = dict(ids.group_by("video_id").len().iter_rows())
    per_video = refs.filter(pl.col("candidates").is_not_null()).group_by("video_id").agg(
        pl.col("candidates").unique(), pl.col("rejected_by").first())
    assert per_video.height > 0
    for v in per_video.iter_rows(named=True):
        steps = max(math.floor((duration[v["video_id"]] - 3.5) / 0.5 + 1e-6) + 1, 0)
        assert v["candidates"] == [steps * speakers[v["video_id"]]], v
        assert sum(v["rejected_by"].values()) <= v["candidates"][0]
    dialog_rejections = per_video.filter(pl.col("rejected_by").struct.field("max_other_speech_s") > 0)
    assert dialog_rejections.height >= 1, "the dialog's windows where the other speaker talks are counted"


def test_normalised_k_references_build_verifies_and_carries_its_gains(built: Recipe, tmp_path: Path) -> None:
    recipe = copy_build(built, tmp_path, references={"normalize_lufs": -23.0}, pairs={"references_per_target": 2})
    ran = {r.stage: r.ran for r in build(recipe, progress=False)}
    assert ran["references"] > 0 and ran["targets"] == 0
    assert verify_build(recipe) == []
    refs = read_frame(recipe.manifests_dir, "references", ok_only=True)
    pairs = read_frame(recipe.manifests_dir, "pairs", ok_only=True)
    assert pairs.height > 0
    info = {r["reference_id"]: r for r in refs.to_dicts()}
    for p in pairs.iter_rows(named=True):
        ids = p["reference_ids"]
        assert len(ids) == 2 and len(set(ids)) == 2
        assert all(info[r]["video_id"] != p["target_video_id"] for r in ids)
        assert info[ids[0]]["quality"] >= info[ids[1]]["quality"]
    for r in refs.iter_rows(named=True):
        out_peak = r["peak_dbfs"] + r["gain_db"]
        assert out_peak <= -1.0 + 1e-6
        assert r["gain_limited"] or abs(r["lufs"] + r["gain_db"] + 23.0) < 0.002
    assert not refs["gain_limited"].all(), "some references reach -23 LUFS, so the loudness is checked"

    checked = reached = 0
    for shard in sorted(recipe.shards_dir.rglob("*.tar")):
        with tarfile.open(shard) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
        for name in (n for n in files if n.partition(".")[2] == "json"):
            meta = json.loads(files[name])
            assert meta["variants"] == 2 and len(meta["references"]) == 2
            for i, m in enumerate(meta["references"]):
                row = info[m["reference_id"]]
                assert m["applied_gain_db"] == row["gain_db"] and m["snr_db"] == row["snr_db"]
                wav, sr = sf.read(io.BytesIO(files[name.removesuffix("json") + f"ref{i}.wav"]))
                lufs, peak = integrated_lufs(wav.mean(axis=1), sr), peak_dbfs(wav.T)
                assert peak <= -1.0 + 0.01
                assert m["gain_limited"] or abs(lufs + 23.0) < 0.5, (lufs, m)  # measured: within 0.01 LU
                checked += 1
                reached += not m["gain_limited"]
    assert checked >= 2 * pairs.height
    assert reached > 0, "some shard references are not gain-limited, so their measured loudness is checked"

    # check_references catches a used reference whose gate record fails (or says it passed at a value that does
    # not), or a gain that breaks the ceiling.
    used = pairs["reference_ids"][0][0]
    for record in ({"value": 0.0}, {"value": 0.0, "passed": False}):
        rows = [{**r, "gates": [{**g, **record} if g["name"] == "min_snr_db" else g for g in r["gates"]]}
                if r["reference_id"] == used else r for r in refs.to_dicts()]
        bad_snr = pl.DataFrame(rows, schema=refs.schema)
        assert any("min_snr_db" in p and "SNR (dB) 0 < " in p and used in p
                   for p in check_references(pairs, bad_snr, recipe)), record
    bad_gain = refs.with_columns(pl.when(pl.col("reference_id") == used).then(30.0).otherwise(pl.col("gain_db"))
                                 .alias("gain_db"))
    assert any("above the ceiling" in p and used in p for p in check_references(pairs, bad_gain, recipe))
