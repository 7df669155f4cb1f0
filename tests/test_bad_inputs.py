"""Bad input gets one reject row each, naming the file and the reason, and the build completes."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from ltxa_data.corpus.generate import make_bad_inputs
from ltxa_data.pipeline import build
from ltxa_data.recipe import load_recipe
from ltxa_data.reporting.verify import verify_build
from ltxa_data.stages.scan import printable_name
from ltxa_data.storage import read_frame

from .conftest import recipe_dict, write_recipe


def test_bad_inputs_are_rejected_with_reasons_and_the_rest_builds(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad inputs"
    expected = make_bad_inputs(bad, sorted(corpus.rglob("clip_00.mp4"))[0])
    assert len(expected) >= 7
    not_utf8 = os.fsdecode(b"latin1 caf\xe9.mp4")
    (bad / not_utf8).write_bytes((bad / "tiny.mp4").read_bytes())
    expected[not_utf8] = "not valid UTF-8"
    data = recipe_dict(corpus)
    data["input"]["paths"] = [str(corpus), str(bad)]
    recipe = load_recipe(write_recipe(tmp_path / "recipe", data))

    build(recipe, progress=False)

    videos = read_frame(recipe.manifests_dir, "videos")
    for name, keyword in expected.items():
        shown = printable_name(name)
        rows = videos.filter(pl.col("path") == str(bad / shown))
        assert rows.height == 1, name
        row = rows.row(0, named=True)
        if keyword == "ok":
            assert row["status"] == "ok", (name, row["error"])
        else:
            assert row["status"] in ("skipped", "failed"), name
            assert row["error"].startswith(f"{shown}: "), row["error"]
            assert keyword in row["error"], (keyword, row["error"])
    weird = next(n for n, k in expected.items() if k == "ok")
    assert videos.filter(pl.col("rel_path") == weird)["status"].item() == "ok", "odd names round-trip"
    shards = read_frame(recipe.manifests_dir, "shards", ok_only=True)
    assert shards.height > 0
    assert verify_build(recipe) == []
