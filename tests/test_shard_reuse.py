"""A shard stage that reruns copies the bytes of unchanged samples from the earlier shards instead of rendering
(and encoding) them again: laid out anew (another samples_per_shard), a build renders nothing, and what it
writes passes verify, media and latents included."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe
from ltxa_data.reporting.verify import verify_build
from ltxa_data.shard_format import REUSE_DIR, read_members
from ltxa_data.stages import STAGES, ShardStage
from ltxa_data.stages import shard as shard_module
from ltxa_data.stages.shard import cut_sample, media_members
from ltxa_data.storage import read_frame

from .conftest import SIZE, copy_build
from .fixtures.crashing import NoRenderShards


def _relaid(recipe: Recipe) -> None:
    before = read_frame(recipe.manifests_dir, "shards", ok_only=True)
    [report] = build(recipe, only=["shard"], progress=False, stages=(*STAGES[:-1], NoRenderShards))
    after = read_frame(recipe.manifests_dir, "shards")
    assert report.ran == report.partitions > 0 and after["status"].unique().to_list() == ["ok"]
    assert sorted(after["key"].to_list()) == sorted(before["key"].to_list())
    assert after.join(before, on="key").filter(pl.col("sample_hash") != pl.col("sample_hash_right")).height == 0
    assert after["shard"].n_unique() > before["shard"].n_unique()  # 1 per shard on average instead of 4
    assert not (recipe.output_dir / REUSE_DIR).exists()
    assert verify_build(recipe) == []


def test_media_samples_are_copied(built: Recipe, tmp_path: Path) -> None:
    # Far enough from 4 that the shard counts are not kept (`bucket_count`).
    _relaid(copy_build(built, tmp_path, shard={"samples_per_shard": 1}))


def test_encoded_samples_are_copied(encoded: Recipe, checkpoint: Path, conditions: Path, tmp_path: Path) -> None:
    _relaid(copy_build(encoded, tmp_path, targets={"size": SIZE}, shard={"samples_per_shard": 1},
                       encode={"backend": "ltx", "checkpoint": str(checkpoint), "device": "cpu", "batch_size": 3},
                       export={"conditions": str(conditions)}))


def test_a_lineage_change_rewrites_only_the_json(built: Recipe, tmp_path: Path) -> None:
    """A setting that changes no sample's media (a looser loudness ceiling no reference reaches) changes the
    recipe hash in every sample's lineage: the media are copied, the jsons rewritten."""
    recipe = copy_build(built, tmp_path, references={"max_lufs": -7.5})
    before = read_frame(recipe.manifests_dir, "pairs", ok_only=True)["recipe_hash"][0]
    build(recipe, progress=False, stages=(*STAGES[:-1], NoRenderShards))
    after = read_frame(recipe.manifests_dir, "shards")
    assert after["status"].unique().to_list() == ["ok"]
    now = read_frame(recipe.manifests_dir, "pairs", ok_only=True)["recipe_hash"][0]
    assert now != before
    row = after.row(0, named=True)
    members = read_members(recipe.shards_dir / row["shard"], row["offset"], row["nbytes"])
    meta = json.loads(members[f"{row['key']}.json"])
    assert meta["lineage"]["recipe_hash"] == now and meta["sample_hash"] == row["sample_hash"]
    assert verify_build(recipe) == []


def test_a_take_down_moves_no_other_sample(built: Recipe) -> None:
    """Samples go to shards by a hash of their key: without one identity's samples, the plan changes only the
    shards that held them; every other sample stays in its shard, in its place."""
    tables = {t: read_frame(built.manifests_dir, t) for t in ShardStage.reads}
    before = ShardStage(built).plan(tables)
    pairs = tables["pairs"].filter(pl.col("status") == "ok")
    gone = pairs.group_by("identity_id").len().sort(["len", "identity_id"])["identity_id"][-1]
    tables["pairs"] = tables["pairs"].filter(pl.col("identity_id") != gone)
    stage = ShardStage(built)
    stage.previous_buckets = {k.rsplit("-", 3)[0] + "-": int(k.rsplit("-of-", 1)[1]) for k in (p.key for p in before)}
    after = {p.key: p for p in stage.plan(tables)}
    held = {p.key for p in before if any(s["identity_id"] == gone for s in p.data["samples"])}
    assert 0 < len(held) < len(before)
    for p in before:
        kept = [s["key"] for s in p.data["samples"] if s["identity_id"] != gone]
        now = after.get(p.key)
        assert [s["key"] for s in now.data["samples"]] == kept if now else not kept
        assert (now is not None and now.input_hash == p.input_hash) == (p.key not in held)


def test_the_shard_stage_takes_the_windows_the_targets_stage_cut(built: Recipe, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """One decode per window: every ok target left its clip (`target_clips`); a sample's mp4 in the shards is
    byte for byte what the shard stage makes when it cuts the window itself; with the clip there the shard stage
    decodes no frame; a clip made otherwise (another crf) or gone is not taken."""
    targets = read_frame(built.manifests_dir, "targets", ok_only=True)
    assert targets.height > 0 and targets["clip_file"].null_count() == 0
    tables = {t: read_frame(built.manifests_dir, t) for t in ShardStage.reads}
    stage = ShardStage(built)
    stage.setup()
    samples = {s["key"]: s for p in stage.plan(tables) for s in p.data["samples"]}
    shards = read_frame(built.manifests_dir, "shards", ok_only=True)
    size, pad, crf = built.targets.size, built.targets.face.pad, built.shard.video_crf

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the shard stage decoded a window")

    for row in shards.head(3).iter_rows(named=True):
        sample = samples[row["key"]]
        mp4 = read_members(built.shards_dir / row["shard"], row["offset"], row["nbytes"])[f"{row['key']}.mp4"]
        assert mp4 == media_members(cut_sample(sample, size, pad), crf)["mp4"]
        with monkeypatch.context() as patch:
            patch.setattr(shard_module, "read_frames", no_decode)
            cut = stage._cut(sample)
        assert cut.frames is None and cut.media is not None and cut.media["mp4"] == mp4

    sample = samples[shards["key"][0]]
    other = ShardStage(copy_build(built, tmp_path, shard={"video_crf": crf + 5}))
    other.setup()
    cut = other._cut(sample)
    assert cut.frames is not None and cut.media is None, "a clip encoded at another crf is not taken"
    cut = stage._cut({**sample, "clip": "targets/gone.arrow"})
    assert cut.frames is not None and cut.media is None
