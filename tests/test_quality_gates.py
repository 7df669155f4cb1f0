"""Material quality on the generated corpus: a reverberant voice, a music bed, burned-in subtitles, an out-of-focus
picture, a small face in a wide shot and a turned head, each beside clean clips of the same speakers. Every spoiled
clip must give no target (removed by the gate meant for it), the sound-spoiled ones no reference, and the clean
clips keep theirs; `verify` holds and `explain` names the gate with its value and threshold."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ltxa_data.corpus.generate import generate_corpus, load_ground_truth
from ltxa_data.corpus.scoring import QUALITY_GATES, score_quality_gates
from ltxa_data.gates import REFERENCE_GATES, TARGET_GATES, required_gates
from ltxa_data.pipeline import build
from ltxa_data.recipe import CorpusConfig, Recipe, load_recipe, parse_recipe
from ltxa_data.reporting.explain import explain
from ltxa_data.reporting.verify import verify_build
from ltxa_data.stages.pairs import choose_references
from ltxa_data.storage import read_frame

from .conftest import recipe_dict, write_recipe

QUALITY_CORPUS = CorpusConfig(seed=3, speakers=3, clips_per_speaker=2, two_speaker_clips=0, scene_cut_clips=0,
                              short_clips=0, listener_clips=0, still_clips=0, dub_clips=0, lipsync_clips=0,
                              phone_clips=0, reverb_clips=1, music_clips=1, subtitle_clips=1, blur_clips=1,
                              tiny_face_clips=1, turned_clips=1)


@pytest.fixture(scope="module")
def quality_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, dict]:
    corpus = tmp_path_factory.mktemp("quality") / "clips"
    gt = load_ground_truth(generate_corpus(corpus, QUALITY_CORPUS))
    recipe = load_recipe(write_recipe(tmp_path_factory.mktemp("quality_build"),
                                      recipe_dict(corpus, quality=True, targets={"crop": "face"})))
    build(recipe, progress=False)
    return recipe, gt


def _by_kind(recipe: Recipe, gt: dict, table: str) -> pl.DataFrame:
    m = recipe.manifests_dir
    kinds = {c["path"]: c["kind"] for c in gt["clips"]}
    videos = read_frame(m, "videos").select("video_id", "rel_path")
    return read_frame(m, table).join(videos, on="video_id").with_columns(
        kind=pl.col("rel_path").replace_strict(kinds, default=None))


def test_each_spoiled_clip_gives_no_target_by_its_gate_and_clean_clips_keep_theirs(
        quality_build: tuple[Recipe, dict]) -> None:
    recipe, gt = quality_build
    targets = _by_kind(recipe, gt, "targets")
    for kind, meant in QUALITY_GATES.items():
        rows = targets.filter(pl.col("kind") == kind)
        assert rows.height, kind
        assert rows.filter(pl.col("status") == "ok").height == 0, (kind, rows.select("skipped_by", "error").rows())
        # A frontal detector loses some turned heads altogether: the face gate then removes them first.
        allowed = {*meant, "face"} if kind == "turned" else set(meant)
        assert set(rows["skipped_by"]) <= allowed, (kind, rows.select("skipped_by", "error").rows())
    clean = targets.filter(pl.col("kind") == "single")
    assert clean.filter(pl.col("status") == "ok")["rel_path"].n_unique() == clean["rel_path"].n_unique()
    assert clean.filter(pl.col("skipped_by").is_in([g for gs in QUALITY_GATES.values() for g in gs])).height == 0
    # A kept window records every gate the recipe turns on, the picture and speech ones included.
    kept = clean.filter(pl.col("status") == "ok")
    names = {r["name"] for gates in kept["gates"] for r in gates}
    assert set(required_gates(TARGET_GATES, recipe)) <= names
    assert {"upscale", "sharpness", "yaw", "pitch", "roll", "burned_text", "speech_ovrl", "speech_bak"} <= names
    assert kept["dnsmos_ovrl"].is_not_null().all() and kept["text_fraction"].max() == 0.0


def test_sound_spoiled_clips_give_no_reference_and_the_draw_prefers_clean(quality_build: tuple[Recipe, dict]) -> None:
    recipe, gt = quality_build
    refs = _by_kind(recipe, gt, "references")
    ok = refs.filter(pl.col("status") == "ok")
    assert ok.filter(pl.col("kind").is_in(["reverb", "music"])).height == 0
    assert ok.filter(pl.col("kind") == "single").height >= 3
    assert {"min_ovrl", "min_bak"} <= {r["name"] for gates in ok["gates"] for r in gates}
    # quality is DNSMOS OVRL on 0-1
    assert ok.select(((pl.col("dnsmos_ovrl") - 1) / 2.3).clip(0, 1).round(4) == pl.col("quality")).to_series().all()
    lines = score_quality_gates(read_frame(recipe.manifests_dir, "targets"), read_frame(recipe.manifests_dir,
                                "references"), read_frame(recipe.manifests_dir, "videos"), gt)
    assert any(line.startswith("vs ground truth, material quality: clean clips") for line in lines), lines


def test_verify_holds_and_explain_names_the_gate(quality_build: tuple[Recipe, dict]) -> None:
    recipe, gt = quality_build
    assert verify_build(recipe, check_media=False) == []
    targets = _by_kind(recipe, gt, "targets")
    sub = targets.filter(pl.col("kind") == "subtitle").row(0, named=True)
    text = explain(recipe, sub["target_id"])
    assert "share of searched frames with overlay text" in text and "targets.picture.max_text_fraction" in text
    assert "burned-in text" in sub["error"]


def test_reference_draw_bands_prefer_clean_clips_always() -> None:
    # Two clean clips and two degraded ones: with bands, every target's reference is a clean clip's.
    cands = [("c1", "vC1", 0.9), ("c2", "vC2", 0.8), ("d1", "vD1", 0.45), ("d2", "vD2", 0.3)]
    picks = [choose_references(f"t{i}", "vT", cands, 1, 0, 4.0, quality_band=0.25)[0][0] for i in range(500)]
    assert set(picks) == {"c1", "c2"}
    without = [choose_references(f"t{i}", "vT", cands, 1, 0, 4.0)[0][0] for i in range(500)]
    assert {"d1", "d2"} & set(without)  # the weighted draw alone lets degraded clips through
    # Two references: one per clip first, so the second comes from the other clean clip.
    assert {r for r, _ in choose_references("t", "vT", cands, 2, 0, 4.0, quality_band=0.25)} == {"c1", "c2"}
    # ...but a better band wins over spreading: two windows of one clean clip rather than a degraded clip's.
    one_clean = [("a1", "vA", 0.95), ("a2", "vA", 0.9), ("d1", "vD", 0.2)]
    assert {r for r, _ in choose_references("t", "vT", one_clean, 2, 0, 4.0, quality_band=0.25)} == {"a1", "a2"}


def test_gates_the_recipe_turns_off_are_not_required() -> None:
    base = {"name": "x", "input": {"paths": ["."]}, "output": {"dir": "out"}}
    off = parse_recipe({**base, "targets": {"picture": {"check": False}, "speech_quality": {"backend": "snr"}},
                        "references": {"speech_quality": {"backend": "snr"}}})
    assert not {"upscale", "burned_text", "speech_ovrl"} & set(required_gates(TARGET_GATES, off))
    assert "min_ovrl" not in required_gates(REFERENCE_GATES, off)
    on = parse_recipe(base)
    assert {"upscale", "sharpness", "yaw", "burned_text", "speech_povrl"} <= set(required_gates(TARGET_GATES, on))
    no_text = parse_recipe({**base, "targets": {"picture": {"text": "off"}}})
    assert "burned_text" not in required_gates(TARGET_GATES, no_text)
    with pytest.raises(Exception, match=r"picture\.check need face\.required"):
        parse_recipe({**base, "targets": {"face": {"required": False}, "active_speaker": {"check": False},
                                          "face_identity": {"check": False}}})


def test_preflight_names_a_missing_quality_model(tmp_path: Path) -> None:
    from ltxa_data.backends import backend_problems

    recipe = parse_recipe({"name": "x", "input": {"paths": ["."]}, "output": {"dir": "out"},
                           "references": {"speech_quality": {"model": str(tmp_path / "dnsmos")}},
                           "targets": {"picture": {"text_model": str(tmp_path / "det.onnx")}}})
    problems = "\n".join(backend_problems(recipe))
    assert "sig_bak_ovr.onnx" in problems and str(tmp_path / "dnsmos") in problems
    assert str(tmp_path / "det.onnx") in problems
