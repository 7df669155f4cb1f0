"""Copies of one clip in a build: the sample corpus's re-uploads (cropped and rescaled, trimmed, another frame
rate) end in one group with their original, in one split, never as each other's references, and only the
best copy gives targets; `verify` says so and catches a build that breaks either rule."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ltxa_data.corpus.generate import load_ground_truth
from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe
from ltxa_data.reporting.verify import check_duplicates, verify_build
from ltxa_data.storage import read_frame

from .conftest import copy_build


def _video_ids(recipe: Recipe) -> dict[str, str]:
    return dict(read_frame(recipe.manifests_dir, "videos").select("rel_path", "video_id").iter_rows())


def test_copies_are_grouped_with_their_original_and_nothing_else(built: Recipe) -> None:
    truth = load_ground_truth(Path(built.input.paths[0]))
    copies = {c["path"]: c["copy_of"] for c in truth["clips"] if c["kind"] == "copy"}
    assert len(copies) == 2 and {c["copy_kind"] for c in truth["clips"] if c["kind"] == "copy"} == {
        "crop_rescale", "trim"}
    ids = _video_ids(built)
    dup = read_frame(built.manifests_dir, "duplicates")
    assert dup["status"].to_list() == ["ok"] * dup.height
    groups = {frozenset(g) for g in dup.group_by("group_id").agg("video_id")["video_id"].to_list()}
    # Exactly the planted copies: the look-alikes (the same drawn face and voice in other clips) are no copies.
    assert groups == {frozenset({ids[c], ids[o]}) for c, o in copies.items()}
    rep = dict(dup.select("video_id", "representative").iter_rows())
    for c, o in copies.items():
        assert rep[ids[o]] and not rep[ids[c]]  # the original has more pixels
        row = dup.filter(pl.col("video_id") == ids[c]).row(0, named=True)
        assert row["matched_video_id"] == ids[o] and row["score"] > 0.5
    trim = next(c for c in truth["clips"] if c.get("copy_kind") == "trim")
    assert dup.filter(pl.col("video_id") == ids[trim["path"]])["offset_s"][0] == pytest.approx(1.0, abs=0.07)


def test_a_group_is_one_clip_to_targets_splits_and_references(built: Recipe) -> None:
    truth = load_ground_truth(Path(built.input.paths[0]))
    ids = _video_ids(built)
    copies = {ids[c["path"]]: ids[c["copy_of"]] for c in truth["clips"] if c["kind"] == "copy"}
    targets = read_frame(built.manifests_dir, "targets")
    for copy in copies:  # duplicates.targets one (the default): the copy gives no target, and says why
        rows = targets.filter(pl.col("video_id") == copy)
        assert rows["status"].to_list() == ["skipped"] and rows["skipped_by"].to_list() == ["duplicate"]
        assert "a copy of" in rows["error"][0] and "duplicates.targets one" in rows["error"][0]
    pairs = read_frame(built.manifests_dir, "pairs", ok_only=True)
    members = {v for pair in copies.items() for v in pair}
    group = {v: o for c, o in copies.items() for v in (c, o)}
    assert pairs.filter(pl.col("target_video_id").is_in(list(members))).height > 0
    for p in pairs.iter_rows(named=True):
        own = group.get(p["target_video_id"], p["target_video_id"])
        assert all(group.get(v, v) != own for v in p["reference_video_ids"])
    dups = read_frame(built.manifests_dir, "duplicates")
    assert check_duplicates(pairs, dups, targets, "one") == []
    # verify catches a reference from a copy of the target's video, and a group in two splits.
    copy, orig = next(iter(copies.items()))
    victim = pairs.filter(pl.col("target_video_id") == orig)["key"][0]
    bad = pairs.with_columns(
        reference_video_ids=pl.when(pl.col("key") == victim).then(pl.lit([copy])).otherwise("reference_video_ids"))
    found = check_duplicates(bad, dups, targets, "one")
    assert found == [f"pair {victim}: a reference comes from a copy of its target's video (duplicate group "
                     f"{min(copy, orig)})"]
    # A sample of another identity's group (another split) that takes its reference from the copy.
    stranger = pairs.filter(pl.col("split") != pairs.filter(pl.col("key") == victim)["split"][0])["key"][0]
    bad = pairs.with_columns(
        reference_video_ids=pl.when(pl.col("key") == stranger).then(pl.lit([copy])).otherwise("reference_video_ids"))
    found = check_duplicates(bad, dups, targets, "one")
    assert any(f"duplicate group {min(copy, orig)} feeds splits" in p for p in found), found


def test_all_copies_may_give_targets(built: Recipe, tmp_path: Path) -> None:
    recipe = copy_build(built, tmp_path, duplicates={"targets": "all"})
    build(recipe, progress=False)
    assert verify_build(recipe, check_media=False) == []
    truth = load_ground_truth(Path(built.input.paths[0]))
    ids = _video_ids(recipe)
    copies = {ids[c["path"]] for c in truth["clips"] if c["kind"] == "copy"}
    pairs = read_frame(recipe.manifests_dir, "pairs", ok_only=True)
    from_copies = pairs.filter(pl.col("target_video_id").is_in(list(copies)))
    assert from_copies.height > 0
    dups = read_frame(recipe.manifests_dir, "duplicates")
    group = dict(dups.select("video_id", "group_id").iter_rows())
    splits = pairs.filter(pl.col("target_video_id").is_in(list(group))).with_columns(
        g=pl.col("target_video_id").replace_strict(group)).group_by("g").agg(pl.col("split").n_unique())
    assert splits["split"].to_list() == [1] * splits.height
