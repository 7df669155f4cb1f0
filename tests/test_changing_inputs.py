"""Input files that change or vanish between the scan and a later stage of one build (a sync job, a person deleting a
bad file): each costs its video's row with a reason that says what the next build does, never the build; the next
build scans the changed file as a new video and forgets the vanished one."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from ltxa_data.corpus.generate import load_ground_truth
from ltxa_data.pipeline import build
from ltxa_data.recipe import load_recipe
from ltxa_data.reporting.verify import verify_build
from ltxa_data.stages import STAGE_NAMES
from ltxa_data.storage import read_frame

from .conftest import recipe_dict, write_recipe


def test_files_that_change_or_vanish_after_the_scan_cost_their_rows_only(corpus: Path, tmp_path: Path) -> None:
    gt = load_ground_truth(corpus)
    singles = [c["path"] for c in gt["clips"] if c["kind"] == "single" and c["identity"] in ("spk0", "spk1")]
    clips = tmp_path / "clips"
    for rel in singles:
        (clips / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / rel, clips / rel)
    recipe = load_recipe(write_recipe(tmp_path, recipe_dict(clips, pairs={"splits": {"train": 1.0, "val": 0.0,
                                                                                     "test": 0.0}})))
    build(recipe, only=["scan"], progress=False)
    gone, changed = singles[0], singles[3]
    (clips / gone).unlink()
    other = next(c["path"] for c in gt["clips"] if c["kind"] == "single" and c["identity"] == "spk2")
    shutil.copy2(corpus / other, clips / changed)  # another clip's bytes under this name
    build(recipe, only=[s for s in STAGE_NAMES if s != "scan"], progress=False)  # the scan's facts are now stale
    videos = read_frame(recipe.manifests_dir, "videos", ok_only=True).select("video_id", "rel_path")
    scenes = read_frame(recipe.manifests_dir, "scenes").join(videos, on="video_id")
    by_rel = {r["rel_path"]: r for r in scenes.iter_rows(named=True)}
    assert by_rel[gone]["status"] == "failed"
    assert "the file is gone since the scan: this build leaves it out" in by_rel[gone]["error"]
    assert by_rel[changed]["status"] == "failed"
    assert "the file changed since the scan" in by_rel[changed]["error"]
    assert "the next build scans it again as a new video" in by_rel[changed]["error"]
    others = scenes.filter(~pl.col("rel_path").is_in([gone, changed]))
    assert others.height == len(singles) - 2 and set(others["status"]) == {"ok"}
    assert read_frame(recipe.manifests_dir, "pairs", ok_only=True).height  # the rest built
    build(recipe, progress=False)  # the next full build: rescanned
    now = read_frame(recipe.manifests_dir, "videos", ok_only=True)
    assert gone not in set(now["rel_path"])
    assert now.filter(pl.col("rel_path") == changed)["video_id"][0] != by_rel[changed]["video_id"]
    assert set(read_frame(recipe.manifests_dir, "scenes")["status"]) == {"ok"}
    assert verify_build(recipe) == []
