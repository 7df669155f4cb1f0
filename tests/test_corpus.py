"""The synthetic talking-head corpus: files match their ground truth, mouths move with speech, and the
bad-input corpus is broken in the advertised ways."""

from __future__ import annotations

import csv
import itertools
import json
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from ltxa_data.corpus.faces import LOOKS, look
from ltxa_data.corpus.generate import (
    ACCENT_LABELS,
    GT_VERSION,
    SENTENCES,
    VOICES,
    generate_corpus,
    load_ground_truth,
    make_bad_inputs,
)
from ltxa_data.corpus.speech import ACCENT_VOICES, corpus_speakers
from ltxa_data.media import MediaError, probe, read_audio
from ltxa_data.recipe import CorpusConfig

CFG = CorpusConfig(speakers=3, clips_per_speaker=2, two_speaker_clips=1, scene_cut_clips=1, short_clips=1)
WINDOW_S = 4.84


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("corpus")
    gt_path = generate_corpus(out, CFG)
    assert gt_path == out / "ground_truth.json"
    return out, load_ground_truth(gt_path)


def _decode(path: Path, rotation: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame's time and RGB array (turned `rotation` degrees clockwise, upright), decoded without
    codec threads."""
    times, frames = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            times.append(float(f.time))
            frames.append(np.rot90(f.to_ndarray(format="rgb24"), k=-(rotation // 90)))
    return np.asarray(times), frames


def _shot_at(clip: dict, t: float) -> dict:
    return [s for s in clip["shots"] if s["start"] <= t + 1e-6][-1]


def _speech_fraction(segments: list[dict], start: float, length: float) -> float:
    covered = sum(max(0.0, min(s["end"], start + length) - max(s["start"], start)) for s in segments)
    return covered / length


def test_layout_and_counts(corpus: tuple[Path, dict]) -> None:
    out, gt = corpus
    assert gt["version"] == GT_VERSION
    assert CorpusConfig.model_validate(gt["config"]) == CFG
    assert gt["speakers"] == dict(VOICES[:3])
    assert [name for name, _ in VOICES] == [f"spk{i}" for i in range(8)]
    kinds = Counter(c["kind"] for c in gt["clips"])
    assert kinds == {"single": 6, "dialog": 1, "cut": 1, "short": 1, "listener": 1, "still": 1, "dub": 1,
                     "lipsync": 1, "phone": 1}
    for c in gt["clips"]:
        shown = {s["speaker"] for s in c["shots"]}
        mouths = {s["mouth"] for s in c["shots"]}
        if c["kind"] in ("listener", "lipsync"):  # another identity's face, listening or lip-synced
            assert c["identity"] not in shown and mouths == {"listener" if c["kind"] == "listener" else "voice"}
        else:
            assert shown <= set(c["speakers"]) and mouths == {{"still": "still", "dub": "other"}.get(c["kind"], "own")}
        assert c["rotation"] == (90 if c["kind"] == "phone" else 0)
    paths = [c["path"] for c in gt["clips"]]
    assert len(set(paths)) == len(paths)
    for c in gt["clips"]:
        assert (out / c["path"]).is_file()
        assert c["path"].split("/")[0] == c["identity"] == c["speakers"][0]
        assert c["identity"] in gt["speakers"]
    specials = {c["identity"] for c in gt["clips"] if c["kind"] != "single"}
    assert len(specials) >= 2, "special clips are spread over speakers"


def test_probe_matches_ground_truth(corpus: tuple[Path, dict]) -> None:
    out, gt = corpus
    for c in gt["clips"]:
        p = probe(out / c["path"])
        assert abs(p.fps - c["fps"]) < 0.01, c["path"]
        assert p.sample_rate == c["sample_rate"], c["path"]
        assert p.channels == c["channels"], c["path"]
        assert (p.width, p.height) == (c["width"], c["height"]), c["path"]
        assert abs(p.duration_s - c["duration_s"]) < 0.1, c["path"]
        assert not p.variable_frame_rate
        assert p.video_codec == "h264" and p.audio_codec == "aac"


def test_variety(corpus: tuple[Path, dict]) -> None:
    out, gt = corpus
    clips = gt["clips"]
    assert {c["fps"] for c in clips} <= {24.0, 25.0, 30.0, 30000 / 1001}
    assert len({c["fps"] for c in clips}) >= 2
    assert len({c["sample_rate"] for c in clips}) >= 2
    assert {c["channels"] for c in clips} == {1, 2}
    assert len({(c["width"], c["height"]) for c in clips}) >= 3
    assert any(c["height"] > c["width"] for c in clips), "a portrait clip"
    for c in clips:
        a = read_audio(out / c["path"], sample_rate=c["sample_rate"], channels=c["channels"])
        peak_db = 20 * np.log10(np.abs(a).max())
        assert -10.0 < peak_db < -0.5, c["path"]
        assert -9.0 <= c["gain_dbfs"] <= -1.0


def test_durations(corpus: tuple[Path, dict]) -> None:
    _, gt = corpus
    lo, hi = CFG.clip_seconds
    for c in gt["clips"]:
        d, frame = c["duration_s"], 1 / c["fps"]
        if c["kind"] in ("single", "cut", "listener", "still", "dub", "lipsync", "phone"):
            assert lo - 1e-6 <= d <= hi + frame, c["path"]
        elif c["kind"] == "short":
            assert 3.5 <= 3.8 - 1e-6 <= d <= 4.5 + frame < WINDOW_S, c["path"]
        else:
            assert 13.0 <= d <= 21.0, c["path"]


def test_segments_inside_and_disjoint(corpus: tuple[Path, dict]) -> None:
    _, gt = corpus
    for c in gt["clips"]:
        segs = c["segments"]
        assert segs, c["path"]
        assert segs[0]["start"] >= 0.3 - 1e-3
        assert segs[-1]["end"] <= c["duration_s"]
        for s in segs:
            assert 0.0 <= s["start"] < s["end"] <= c["duration_s"]
            assert s["speaker"] in c["speakers"]
        for a, b in itertools.pairwise(segs):
            assert b["start"] - a["end"] >= 0.25, (c["path"], a, b)
        if c["kind"] != "dialog":
            assert {s["speaker"] for s in segs} == {c["identity"]}


def test_segments_match_audio(corpus: tuple[Path, dict]) -> None:
    """Segments are tight: speech energy lies inside them, silence outside."""
    out, gt = corpus
    sr = 16000
    for c in gt["clips"]:
        a = read_audio(out / c["path"], sample_rate=sr)[0].astype(np.float64)
        inside = np.zeros(len(a), bool)
        for s in c["segments"]:
            inside[max(0, round((s["start"] - 0.03) * sr)) : round((s["end"] + 0.03) * sr)] = True
        assert (a[inside] ** 2).sum() / (a**2).sum() > 0.99, c["path"]
        for s in c["segments"]:
            head = a[round(s["start"] * sr) : round((s["start"] + 0.3) * sr)]
            tail = a[round((s["end"] - 0.3) * sr) : round(s["end"] * sr)]
            assert np.abs(head).max() > 0.05 * np.abs(a).max(), (c["path"], s)
            assert np.abs(tail).max() > 0.02 * np.abs(a).max(), (c["path"], s)


def test_speech_is_dense(corpus: tuple[Path, dict]) -> None:
    _, gt = corpus
    for c in gt["clips"]:
        if c["kind"] == "short":
            speech = sum(s["end"] - s["start"] for s in c["segments"])
            assert speech / c["duration_s"] > 0.6, c["path"]
            continue
        for start in np.arange(0.0, c["duration_s"] - WINDOW_S, 0.25):
            assert _speech_fraction(c["segments"], start, WINDOW_S) >= 0.6, (c["path"], start)


def test_dialog_turns(corpus: tuple[Path, dict]) -> None:
    _, gt = corpus
    dialogs = [c for c in gt["clips"] if c["kind"] == "dialog"]
    assert dialogs
    for c in dialogs:
        a, b = c["speakers"]
        assert a != b and a == c["identity"]
        turns: list[list[dict]] = []
        for s in c["segments"]:
            if turns and turns[-1][0]["speaker"] == s["speaker"]:
                turns[-1].append(s)
            else:
                turns.append([s])
        assert len(turns) >= 2
        assert [t[0]["speaker"] for t in turns] == [(a, b)[i % 2] for i in range(len(turns))]
        for t in turns:
            assert 2 <= len(t) <= 4
            assert t[-1]["end"] - t[0]["start"] >= 5.5
        for prev, nxt in itertools.pairwise(turns):
            assert prev[-1]["end"] < nxt[0]["start"]
        # Shot switches are the cuts: one at each turn start, on the frame on screen at that moment.
        assert len(c["cuts"]) == len(turns) - 1
        for cut, t in zip(c["cuts"], turns[1:], strict=True):
            assert 0.0 <= t[0]["start"] - cut < 1 / c["fps"] + 1e-3
        assert [s["speaker"] for s in c["shots"]] == [t[0]["speaker"] for t in turns]


def test_scene_cut_changes_the_picture(corpus: tuple[Path, dict]) -> None:
    out, gt = corpus
    cuts = [c for c in gt["clips"] if c["kind"] == "cut"]
    assert cuts
    for c in cuts:
        assert len(c["cuts"]) == 1
        cut = c["cuts"][0]
        assert 0.35 * c["duration_s"] < cut < 0.65 * c["duration_s"]
        before, after = c["shots"]
        assert before["face_box"] != after["face_box"]
        assert abs(before["face_box"][3] - after["face_box"][3]) >= 0.1 * before["face_box"][3]
        times, frames = _decode(out / c["path"])
        i = int(np.searchsorted(times, cut - 1e-4))
        assert abs(times[i] - cut) < 1e-3
        f = [x.astype(np.int16) for x in frames]
        across = np.abs(f[i] - f[i - 1]).mean()
        within = max(np.abs(f[i - 1] - f[i - 2]).mean(), np.abs(f[i + 1] - f[i]).mean())
        assert across > 15 and within < 2, (across, within)
        # Background colour differs: compare each shot's most common corner colour.
        assert np.abs(f[i - 1][:4, :4].mean((0, 1)) - f[i][:4, :4].mean((0, 1))).max() > 10 or \
            np.abs(f[i - 1][-4:, -4:].mean((0, 1)) - f[i][-4:, -4:].mean((0, 1))).max() > 10


def test_mouth_follows_audio(corpus: tuple[Path, dict]) -> None:
    """Within each shot whose mouth moves with the voice, mouth-area darkness per frame correlates with the
    audio RMS at that frame; a still picture never changes; a listener's or a dub's mouth does not follow."""
    out, gt = corpus
    sr = 16000
    for c in gt["clips"]:
        times, frames = _decode(out / c["path"], c["rotation"])
        if c["kind"] in ("still", "listener", "dub"):
            a = read_audio(out / c["path"], sample_rate=sr)[0].astype(np.float64)
            x, y, w, h = c["shots"][0]["mouth_box"]
            dark = np.array([255.0 - f[y : y + h, x : x + w].mean() for f in frames])
            rms = np.array([np.sqrt(np.mean(a[round(t * sr) : round((t + 1 / c["fps"]) * sr)] ** 2) + 1e-12)
                            for t in times])
            if c["kind"] == "still":
                assert np.ptp(dark) < 1.0, c["path"]
            else:
                assert np.ptp(dark) > 1.0 and abs(np.corrcoef(dark, rms)[0, 1]) < 0.5, c["path"]
            continue
        assert len(times) == round(c["duration_s"] * c["fps"])
        a = read_audio(out / c["path"], sample_rate=sr)[0].astype(np.float64)
        dark, rms, shot = [], [], []
        for t, f in zip(times, frames, strict=True):
            s = _shot_at(c, t)
            x, y, w, h = s["mouth_box"]
            dark.append(255.0 - f[y : y + h, x : x + w].mean())
            shot.append(c["shots"].index(s))
            seg = a[round(t * sr) : round((t + 1 / c["fps"]) * sr)]
            rms.append(float(np.sqrt(np.mean(seg**2))) if len(seg) else 0.0)
        dark_a, rms_a, shot_a = np.asarray(dark), np.asarray(rms), np.asarray(shot)
        # Shots differ in skin tone (so in contrast): compare within one shot.
        for k in range(len(c["shots"])):
            m = shot_a == k
            if m.sum() < 30:
                continue
            r = np.corrcoef(dark_a[m], rms_a[m])[0, 1]
            assert r > 0.8, (c["path"], k, r)
            silent = m & (rms_a < 0.01 * rms_a[m].max())
            loud = m & (rms_a > 0.5 * rms_a[m].max())
            assert loud.sum() >= 5, c["path"]
            if silent.any():  # closed in silence: less open than any clearly loud frame
                assert dark_a[silent].max() < dark_a[loud].min(), (c["path"], k)
        lead_in = times < c["segments"][0]["start"] - 0.05
        assert lead_in.sum() >= 5 and np.ptp(dark_a[lead_in]) < 1.0, "the mouth rests before speech"


def test_sentences(corpus: tuple[Path, dict]) -> None:
    _, gt = corpus
    assert len(set(SENTENCES)) == len(SENTENCES) >= 40
    by_speaker: dict[str, list[str]] = {}
    per_clip: list[tuple[str, ...]] = []
    for c in gt["clips"]:
        texts = tuple(s["text"] for s in c["segments"])
        assert all(t in SENTENCES for t in texts)
        per_clip.append(texts)
        for s in c["segments"]:
            by_speaker.setdefault(s["speaker"], []).append(s["text"])
    for spk, texts in by_speaker.items():
        assert len(texts) == len(set(texts)), f"{spk} repeats a sentence"
    assert len(set(per_clip)) == len(per_clip)
    for (ca, ta), (cb, tb) in itertools.combinations(zip(gt["clips"], per_clip, strict=True), 2):
        if ca["identity"] != cb["identity"]:
            assert set(ta) != set(tb), (ca["path"], cb["path"])


def test_idempotent(corpus: tuple[Path, dict]) -> None:
    out, _ = corpus
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in files}
    t0 = time.perf_counter()
    gt_path = generate_corpus(out, CFG)
    assert time.perf_counter() - t0 < 1.0
    assert gt_path == out / "ground_truth.json"
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in files} == before


def test_deterministic_and_regenerates_on_new_config(corpus: tuple[Path, dict],
                                                     tmp_path: Path) -> None:
    out, gt = corpus
    module_files = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    small = CorpusConfig(speakers=2, clips_per_speaker=1, two_speaker_clips=0, scene_cut_clips=0,
                         short_clips=1, seed=CFG.seed)
    other = tmp_path / "other"
    generate_corpus(other, small)
    first = load_ground_truth(other)
    paths = [c["path"] for c in first["clips"]]
    assert all((other / p).is_file() for p in paths)
    # Same config in a fresh folder: same ground truth and byte-identical files.
    again = tmp_path / "again"
    generate_corpus(again, small)
    assert load_ground_truth(again) == first
    for p in paths:
        assert (again / p).read_bytes() == (other / p).read_bytes()
    # A different config replaces the corpus; clips that are no longer listed are removed.
    changed = small.model_copy(update={"seed": 7, "short_clips": 0})
    generate_corpus(other, changed)
    now = load_ground_truth(other / "ground_truth.json")
    assert CorpusConfig.model_validate(now["config"]) == changed
    assert now["clips"] != first["clips"]
    listed = {c["path"] for c in now["clips"]}
    assert set(paths) - listed, "the new config drops some old clips, so their removal is checked"
    mp4s = {p.relative_to(other).as_posix() for p in other.rglob("*.mp4")}
    assert mp4s == listed
    assert not list(other.rglob("*.tmp"))
    assert json.loads((other / "ground_truth.json").read_text(encoding="utf-8")) == now
    # The module corpus on disk is untouched by this test: same files, sizes and times, same ground truth.
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == module_files
    assert gt["clips"] and load_ground_truth(out) == gt and all((out / c["path"]).is_file() for c in gt["clips"])


def test_make_bad_inputs(corpus: tuple[Path, dict], tmp_path: Path) -> None:
    out, gt = corpus
    good = out / gt["clips"][0]["path"]
    bad = tmp_path / "bad"
    expected = make_bad_inputs(bad, good)
    weird = "it's a \"weird\" náme 東京.mp4"
    assert expected[weird] == "ok" and len(expected) == 7
    assert all(v != "ok" for k, v in expected.items() if k != weird)
    assert sorted(p.name for p in bad.iterdir()) == sorted(expected)

    assert (bad / "empty.mp4").stat().st_size == 0
    trunc = (bad / "truncated.mp4").read_bytes()
    assert len(trunc) == int(good.stat().st_size * 0.4)
    assert good.read_bytes().startswith(trunc)
    for name in ("truncated.mp4", "empty.mp4", "audio_only.mp4"):
        with pytest.raises(MediaError):
            probe(bad / name)

    p = probe(bad / "no_audio.mp4")
    assert not p.has_audio and abs(p.duration_s - 6.0) < 0.1 and min(p.width, p.height) >= 256

    with av.open(str(bad / "audio_only.mp4")) as c:
        assert not c.streams.video and len(c.streams.audio) == 1
        st = c.streams.audio[0]
        assert st.codec_context.name == "aac" and st.codec_context.sample_rate == 16000
        assert st.codec_context.channels == 1
    audio = read_audio(bad / "audio_only.mp4", sample_rate=16000)
    assert 5.5 < audio.shape[1] / 16000 < 6.5 and np.abs(audio).max() > 0.05

    p = probe(bad / "ten_frames.mp4")
    assert p.num_frames == 10 and p.has_audio and abs(p.fps - 25) < 0.01

    p = probe(bad / "tiny.mp4")
    assert (p.width, p.height) == (96, 96) and p.has_audio and abs(p.duration_s - 6.0) < 0.1

    assert (bad / weird).read_bytes() != good.read_bytes(), "its own content, so not a duplicate"
    p = probe(bad / weird)
    assert p.has_audio and abs(p.duration_s - 6.0) < 0.1 and min(p.width, p.height) >= 256


ACCENT_CFG = CorpusConfig(accents=["en-us", "en-gb-x-rp"], speakers_per_accent=2, clips_per_speaker=1,
                          two_speaker_clips=1, scene_cut_clips=0, short_clips=0, listener_clips=0, still_clips=0,
                          dub_clips=0, lipsync_clips=0, phone_clips=0, clip_seconds=(5.0, 6.5))


def _turns(segments: list[dict]) -> list[list[dict]]:
    turns: list[list[dict]] = []
    for s in segments:
        if turns and turns[-1][0]["speaker"] == s["speaker"]:
            turns[-1].append(s)
        else:
            turns.append([s])
    return turns


def test_accent_corpus(tmp_path: Path) -> None:
    out = tmp_path / "accent"
    gt = load_ground_truth(generate_corpus(out, ACCENT_CFG))
    want = {"us_0": "en-us", "us_1": "en-us", "rp_0": "en-gb-x-rp", "rp_1": "en-gb-x-rp"}
    assert gt["accents"] == want and list(gt["speakers"]) == list(want)
    assert CorpusConfig.model_validate(gt["config"]) == ACCENT_CFG
    voices = gt["speakers"]
    assert len(set(voices.values())) == len(voices)
    for spk, voice in voices.items():
        assert voice.startswith(f"{want[spk]}+") and " -p " in voice, voice
    # Each speaker its own variant (an accent hardly changes a voice embedding) and its own drawn look.
    assert len({v.split()[0].split("+")[1] for v in voices.values()}) == len(voices)
    assert len({look(i) for i in range(len(voices))}) == len(voices)
    kinds = Counter(c["kind"] for c in gt["clips"])
    assert kinds == {"single": 4, "dialog": 1}
    assert all((out / c["path"]).is_file() and c["path"].split("/")[0] == c["identity"] for c in gt["clips"])

    with (out / ACCENT_LABELS).open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        assert next(reader) == ["video", "start", "end", "value"]
        rows = list(reader)
    by_video: dict[str, list[list[str]]] = {}
    for r in rows:
        by_video.setdefault(r[0], []).append(r)
    assert set(by_video) == {c["path"] for c in gt["clips"]}
    for c in gt["clips"]:
        got = by_video[c["path"]]
        if c["kind"] == "single":
            assert got == [[c["path"], "", "", want[c["identity"]]]]
            continue
        turns = _turns(c["segments"])
        assert len(got) == len(turns) >= 2
        assert len({want[s] for s in c["speakers"]}) == 2, "dialog partners of different accents"
        for (_, start, end, value), t in zip(got, turns, strict=True):
            assert value == want[t[0]["speaker"]]
            assert abs(float(start) - t[0]["start"]) < 1e-4 and abs(float(end) - t[-1]["end"]) < 1e-4
            assert all(float(start) - 1e-4 <= s["start"] < s["end"] <= float(end) + 1e-4 for s in t)
        for a, b in itertools.pairwise(got):
            assert float(a[2]) < float(b[1]) and a[3] != b[3]


def test_accent_speakers_and_looks() -> None:
    """The default config keeps its speakers; accent configs name theirs by accent; every look is its own."""
    assert corpus_speakers(CorpusConfig()) == {name: (voice, None) for name, voice in VOICES}
    assert "accents" not in CorpusConfig().model_dump(mode="json", exclude={"accents", "speakers_per_accent"})
    five = ["en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbcwmd"]
    speakers = corpus_speakers(CorpusConfig(accents=five, speakers_per_accent=4))
    assert list(speakers)[::4] == ["us_0", "rp_0", "scotland_0", "caribbean_0", "midlands_0"]
    assert len({v for v, _ in speakers.values()}) == 20 and len(ACCENT_VOICES) == 20
    with pytest.raises(ValueError, match="2 to 20"):
        corpus_speakers(CorpusConfig(accents=[*five, "en-gb"], speakers_per_accent=4))
    assert [look(k) for k in range(len(LOOKS))] == list(LOOKS)
    looks = [look(k) for k in range(40)]
    assert len({(lk.style, lk.hair) for lk in looks[len(LOOKS):]}) == 40 - len(LOOKS)
    assert len({(lk.skin, lk.style, lk.hair) for lk in looks}) == 40 and len({lk.skin for lk in looks}) > 30


def test_default_corpus_has_no_accents(corpus: tuple[Path, dict]) -> None:
    out, gt = corpus
    assert "accents" not in gt and not {"accents", "speakers_per_accent"} & set(gt["config"])
    assert not (out / ACCENT_LABELS).exists()
