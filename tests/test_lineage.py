"""Lineage (source files, models and their hashes, toolkit version, recipe hash) in the pairs table and
every sample json, and `ltxa-data explain`, on the shared small build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from ltxa_data import __version__
from ltxa_data.cli import main
from ltxa_data.lineage import SAMPLE_SECTIONS, model_lineage, package_version, recipe_hash
from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe, load_recipe, parse_recipe
from ltxa_data.reporting.explain import ExplainError, explain
from ltxa_data.shard_format import read_sample
from ltxa_data.stages import sample_sections
from ltxa_data.stages.shard import sample_lineage
from ltxa_data.storage import file_sha256, read_frame

from .conftest import copy_build

DEFAULT_ROLES = {"diarizer": "silero_vad", "diarizer.local_speakers": "resemblyzer", "embedder": "resemblyzer",
                 "face_detector": "dlib_hog", "face_landmarks": "dlib", "face_descriptor": "dlib",
                 "active_speaker": "mouth_motion"}
"""The models of the test recipe (the defaults), by role."""


def frames(recipe: Recipe, name: str, ok: bool = True) -> pl.DataFrame:
    return read_frame(recipe.manifests_dir, name, ok_only=ok)


def num(x: float) -> str:
    """A number as `explain` writes it (3 decimals, trailing zeros dropped)."""
    return f"{x:.3f}".rstrip("0").rstrip(".")


def shard_jsons(recipe: Recipe) -> dict[str, dict]:
    """Every sample's json, read from its tar by the index's offsets."""
    out = {}
    for row in frames(recipe, "shards").iter_rows(named=True):
        members = read_sample(recipe.shards_dir, row["shard"], row["offset"], row["nbytes"])
        out[row["key"]] = json.loads(members["json"])
    return out


# ------------------------------------------------------------------------------------------------ lineage


def test_pairs_carry_the_source_files_models_version_and_recipe_hash(built: Recipe) -> None:
    pairs = frames(built, "pairs", ok=False)
    assert pairs.height > 0
    videos = {v["video_id"]: v for v in frames(built, "videos").iter_rows(named=True)}
    expected_hash = recipe_hash(built)
    models = pairs["models"][0].to_list()
    assert {m["role"]: m["backend"] for m in models} == DEFAULT_ROLES
    for p in pairs.iter_rows(named=True):
        assert p["toolkit_version"] == __version__
        assert p["recipe_hash"] == expected_hash
        assert p["models"] == models, "one build, one model lineage on every row"
        target = videos[p["target_video_id"]]
        assert (p["target_path"], p["target_rel_path"], p["target_fingerprint"]) == (
            target["path"], target["rel_path"], target["fingerprint"])
        assert p["target_fingerprint"].startswith(p["target_video_id"])
        refs = [videos[v] for v in p["reference_video_ids"]]
        assert len(refs) == len(p["reference_ids"])
        assert p["reference_paths"] == [v["path"] for v in refs]
        assert p["reference_rel_paths"] == [v["rel_path"] for v in refs]
        assert p["reference_fingerprints"] == [v["fingerprint"] for v in refs]


def test_recorded_model_hashes_are_fresh_hashes_of_the_files(built: Recipe) -> None:
    models = frames(built, "pairs")["models"][0].to_list()
    hashed = [m for m in models if m["path"] is not None]
    assert len(hashed) == len(models) - 1, "only the mouth-motion score has no weights file"
    for m in hashed:
        path = Path(m["path"])
        assert path.is_file(), m
        assert re.fullmatch(r"[0-9a-f]{64}", m["sha256"]), m
        assert m["sha256"] == file_sha256(path), m
        assert m["version"] == package_version(m["package"]) is not None, m
    by_role = {m["role"]: m for m in models}
    assert Path(by_role["diarizer"]["path"]).name == "silero_vad.jit"
    assert by_role["diarizer"]["package"] == "silero-vad"
    assert Path(by_role["embedder"]["path"]).name == "pretrained.pt"
    assert Path(by_role["face_landmarks"]["path"]).name == "shape_predictor_68_face_landmarks.dat"
    assert Path(by_role["face_descriptor"]["path"]).name == "dlib_face_recognition_resnet_model_v1.dat"
    assert by_role["active_speaker"]["sha256"] is None and by_role["active_speaker"]["version"] == __version__


def test_every_sample_json_carries_the_lineage(built: Recipe) -> None:
    pairs = {p["key"]: p for p in frames(built, "pairs").iter_rows(named=True)}
    videos = {v["video_id"]: v for v in frames(built, "videos").iter_rows(named=True)}
    metas = shard_jsons(built)
    assert metas and set(metas) <= set(pairs)
    for key, meta in metas.items():
        lineage = meta["lineage"]
        assert lineage == sample_lineage(pairs[key])
        assert lineage["toolkit_version"] == __version__ and lineage["recipe_hash"] == recipe_hash(built)
        assert {m["role"] for m in lineage["models"]} == set(DEFAULT_ROLES)
        target = lineage["target_video"]
        assert target["video_id"] == meta["video_id"]
        assert (target["path"], target["fingerprint"]) == (videos[meta["video_id"]]["path"],
                                                           videos[meta["video_id"]]["fingerprint"])
        assert [r["video_id"] for r in lineage["reference_videos"]] == [r["video_id"] for r in meta["references"]]
        for r in lineage["reference_videos"]:
            assert (r["path"], r["rel_path"], r["fingerprint"]) == (
                videos[r["video_id"]]["path"], videos[r["video_id"]]["rel_path"], videos[r["video_id"]]["fingerprint"])


def _with(recipe: Recipe, section: str, **values: object) -> Recipe:
    return recipe.model_copy(update={section: getattr(recipe, section).model_copy(update=values)})


def test_recipe_hash_follows_output_settings_not_scheduling(built: Recipe) -> None:
    h = recipe_hash(built)
    assert recipe_hash(load_recipe(built.base_dir / "recipe.yaml")) == h, "stable across loads"
    for section, values in (("references", {"min_snr_db": built.references.min_snr_db + 1}),
                            ("targets", {"min_speech_ratio": 0.7}),
                            ("pairs", {"seed": built.pairs.seed + 1}),
                            ("shard", {"video_crf": 30}),
                            ("diarize", {"backend": "pyannote"})):
        assert recipe_hash(_with(built, section, **values)) != h, (section, values)
    for section, values in (("executor", {"workers": built.executor.workers + 3, "threads_per_worker": 2}),
                            ("encode", {"batch_size": 1, "decode_threads": 1}),
                            ("swap_eval", {"seed": 5}), ("report", {"enabled": False})):
        assert recipe_hash(_with(built, section, **values)) == h, (section, values)


def test_the_sample_sections_are_those_the_stages_declare() -> None:
    """`lineage.SAMPLE_SECTIONS` is written out (the stages import lineage); it must be what the stages'
    `reads` and `sections` give, so that a new stage or section cannot leave the recipe hash behind."""
    assert sample_sections() == SAMPLE_SECTIONS
    assert {"swap_eval", "report", "export", "executor"}.isdisjoint(SAMPLE_SECTIONS)


def test_model_lineage_follows_the_recipe_and_the_files(tmp_path: Path) -> None:
    """Folder models (pyannote, ECAPA, dlib), file models (YuNet, SyncNet, the LTX VAEs), package models
    (the Haar cascade): one entry per file, each with the file's sha256; a changed file changes its hash."""
    def files(folder: str, *names: str) -> Path:
        d = tmp_path / folder
        for i, n in enumerate(names):
            (d / n).parent.mkdir(parents=True, exist_ok=True)
            (d / n).write_bytes(f"{folder} {n} {i}".encode())
        return d

    files("pyannote", "config.yaml", "segmentation/pytorch_model.bin", "plda/plda.npz", ".git/HEAD")
    files("ecapa", "hyperparams.yaml", "embedding_model.ckpt")
    files("dlib", "shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat",
          "mmod_human_face_detector.dat")
    files("weights", "syncnet_v2.model", "video.safetensors", "audio.safetensors")
    data = {"name": "t", "input": {"paths": ["clips"]}, "output": {"dir": "out"},
            "diarize": {"backend": "pyannote", "pyannote": {"model": "pyannote"}},
            "embed": {"backend": "speechbrain_ecapa", "speechbrain_ecapa": {"model": "ecapa"}},
            "targets": {"face": {"detector": "haar", "dlib_models": "dlib"},
                        "active_speaker": {"backend": "syncnet", "model": "weights/syncnet_v2.model"}},
            "encode": {"backend": "ltx", "checkpoint": "weights/video.safetensors",
                       "audio_checkpoint": "weights/audio.safetensors"}}
    recipe = parse_recipe(data, base_dir=tmp_path)
    models = model_lineage(recipe)
    names = {(m["role"], m["name"]) for m in models}
    assert names == {("diarizer", "config.yaml"), ("diarizer", "segmentation/pytorch_model.bin"),
                     ("diarizer", "plda/plda.npz"), ("embedder", "hyperparams.yaml"),
                     ("embedder", "embedding_model.ckpt"), ("face_detector", "haarcascade_frontalface_default.xml"),
                     ("face_landmarks", "shape_predictor_68_face_landmarks.dat"),
                     ("face_descriptor", "dlib_face_recognition_resnet_model_v1.dat"),
                     ("active_speaker", "syncnet_v2.model"), ("ltx_vae.video", "video.safetensors"),
                     ("ltx_vae.audio", "audio.safetensors")}, "hidden files are left out"
    for m in models:
        assert m["sha256"] == file_sha256(Path(m["path"])), m
    by_role = {m["role"]: m for m in models}
    assert by_role["diarizer"]["package"] == "pyannote.audio" and by_role["ltx_vae.audio"]["package"] == "ltx-core"
    assert by_role["face_detector"]["package"].startswith("opencv")
    syncnet = tmp_path / "weights" / "syncnet_v2.model"
    syncnet.write_bytes(b"other weights, longer than before")
    changed = {m["role"]: m["sha256"] for m in model_lineage(recipe)}
    assert changed["active_speaker"] == file_sha256(syncnet) != by_role["active_speaker"]["sha256"]
    assert changed["ltx_vae.video"] == by_role["ltx_vae.video"]["sha256"]


def test_a_later_stage_setting_refreshes_the_lineage_without_rerunning_pairs(built: Recipe, tmp_path: Path) -> None:
    recipe = copy_build(built, tmp_path / "crf", shard={"video_crf": 30})
    ran = {r.stage: r.ran for r in build(recipe, progress=False)}
    assert ran["pairs"] == 0 and ran["shard"] > 0, ran
    new = recipe_hash(recipe)
    assert new != recipe_hash(built)
    assert set(frames(recipe, "pairs")["recipe_hash"]) == {new}
    assert {m["lineage"]["recipe_hash"] for m in shard_jsons(recipe).values()} == {new}


# ------------------------------------------------------------------------------------------------ explain


SECTIONS = ("SAMPLE", "SOURCE VIDEO", "WHY THIS WINDOW", "SPEECH TURNS", "VOICE AND IDENTITY", "WHY THESE REFERENCES",
            "SPLIT", "SCORES AGAINST THRESHOLDS", "LINEAGE")


def _sample_with_other_windows(recipe: Recipe) -> dict:
    """An ok pair whose video has other target rows (so the story has skipped or other windows to tell)."""
    pairs = frames(recipe, "pairs")
    counts = frames(recipe, "targets", ok=False).group_by("video_id").len()
    busy = set(counts.filter(pl.col("len") > 1)["video_id"])
    rows = pairs.filter(pl.col("target_video_id").is_in(list(busy))).sort("key")
    return (rows if rows.height else pairs.sort("key")).row(0, named=True)


def test_explain_tells_the_whole_story_with_the_manifests_numbers(built: Recipe) -> None:
    pair = _sample_with_other_windows(built)
    key = pair["key"]
    text = explain(built, key)
    heads = [line for line in text.splitlines() if line.isupper() or line.startswith("SAMPLE ")]
    assert heads[0] == f"SAMPLE {key}"
    for section in SECTIONS:
        assert any(h.startswith(section) for h in heads), (section, heads)
    assert "FAIL" not in text, "every score of a sample passes"

    target = frames(built, "targets").filter(pl.col("target_id") == key).row(0, named=True)
    video = frames(built, "videos").filter(pl.col("video_id") == target["video_id"]).row(0, named=True)
    voice = frames(built, "voices").filter(pl.col("voice_id") == target["voice_id"]).row(0, named=True)
    ident = frames(built, "identities").filter(pl.col("voice_id") == target["voice_id"]).row(0, named=True)
    ref = frames(built, "references").filter(pl.col("reference_id") == pair["reference_ids"][0]).row(0, named=True)
    cfg = built.targets
    assert re.search(rf"path:\s+{re.escape(video['path'])}\n", text)
    assert video["fingerprint"] in text
    assert re.search(rf"speech ratio:\s+{re.escape(num(target['speech_ratio']))}\s+>= {num(cfg.min_speech_ratio)}",
                     text)
    assert re.search(rf"active-speaker score \(mouth_motion\):\s+{re.escape(num(target['sync_score']))}\s+>= "
                     rf"{num(cfg.active_speaker.threshold)}", text)
    assert re.search(rf"dominant face:\s+{re.escape(num(target['face_distance']))}\s+<= "
                     rf"{num(cfg.face_identity.max_distance)}", text)
    assert re.search(rf"clean speech:\s+{re.escape(num(voice['speech_s']))}\s+>= {num(built.embed.min_speech_s)}",
                     text)
    assert re.search(rf"confidence:\s+{re.escape(num(ident['confidence']))} ", text)
    assert re.search(rf"SNR \(dB\):\s+{re.escape(num(ref['snr_db']))}\s+>= {num(built.references.min_snr_db)}", text)
    assert re.search(rf"loudness \(LUFS\):\s+{re.escape(num(ref['lufs']))}\s+>= {num(built.references.min_lufs)}",
                     text)
    assert re.search(rf"split:\s+{pair['split']}", text)
    # The turns of the target window, the other windows of its video, the identity's other candidates.
    turns = frames(built, "turns").filter((pl.col("video_id") == target["video_id"])
                                          & (pl.col("end_s") > target["start_s"])
                                          & (pl.col("start_s") < target["start_s"] + target["duration_s"]))
    assert turns.height and all(f"{t:.2f} s" in text for t in turns["start_s"])
    others = frames(built, "targets", ok=False).filter((pl.col("video_id") == target["video_id"])
                                                       & (pl.col("target_id") != key))
    assert all(tid in text for tid in others["target_id"])
    cands = frames(built, "references").filter(pl.col("identity_id") == pair["identity_id"])
    for c in cands.iter_rows(named=True):
        line = next(line for line in text.splitlines() if line.strip().startswith(c["reference_id"]))
        if c["reference_id"] in pair["reference_ids"]:
            assert "CHOSEN" in line
        elif c["video_id"] == target["video_id"]:
            assert "same video as the target" in line
        else:
            assert "after the chosen" in line
    # Lineage: the recorded recipe hash, each model's sha256, the shard json's agreement.
    assert re.search(rf"recipe hash:\s+{pair['recipe_hash']} \(the recipe's now\)", text)
    assert all(m["sha256"] in text for m in pair["models"] if m["sha256"])
    assert "carries the same lineage" in text


def test_explain_accepts_a_prefix_and_a_skipped_target(built: Recipe) -> None:
    keys = sorted(frames(built, "pairs")["key"])
    ids = sorted(set(keys) | set(frames(built, "targets", ok=False)["target_id"]))
    key = keys[len(keys) // 2]
    prefix = next(key[:n] for n in range(1, len(key)) if sum(i.startswith(key[:n]) for i in ids) == 1)
    assert len(prefix) < len(key)
    assert explain(built, prefix) == explain(built, key)
    targets = frames(built, "targets", ok=False)
    skipped = targets.filter((pl.col("status") != "ok") & pl.col("start_frame").is_not_null())
    if skipped.height == 0:
        pytest.skip("the small build skipped no tracked window")
    t = skipped.sort("target_id").row(0, named=True)
    text = explain(built, t["target_id"])
    assert "none: this target has no sample" in text
    assert t["error"].split(": ", 1)[1] in text
    assert "FAIL" in text, "the check that skipped it is shown failing"


def test_explain_names_an_unknown_or_ambiguous_key(built: Recipe, capsys: pytest.CaptureFixture[str]) -> None:
    key = sorted(frames(built, "pairs")["key"])[0]
    typo = key[:-1] + ("1" if key[-1] != "1" else "2")
    recipe_file = str(built.base_dir / "recipe.yaml")
    assert main(["explain", recipe_file, typo]) == 1
    err = capsys.readouterr().err
    assert f"no sample or target {typo!r}" in err and key in err, err
    with pytest.raises(ExplainError, match="ambiguous"):
        explain(built, key[:1] if sum(k.startswith(key[:1]) for k in frames(built, "pairs")["key"]) > 1 else "")
    assert main(["explain", recipe_file, key]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"SAMPLE {key}") and "LINEAGE" in out
