"""A build made by the previous release: its tables lack the columns (and the table) added since. Every reading
command reads it or says exactly what to run, and `build` brings it up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from ltxa_data.cli import main
from ltxa_data.evaluation.cases import eval_plan
from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe
from ltxa_data.reporting.explain import explain
from ltxa_data.reporting.report import write_report
from ltxa_data.reporting.status import format_status, stage_statuses
from ltxa_data.reporting.verify import verify_build
from ltxa_data.storage import read_frame

from .conftest import copy_build

PREVIOUS_RELEASE = {"pairs": ["match", "value", "reference_identity_ids"], "swap_eval": ["value_a", "value_b"]}
"""The columns added since the previous release (7d95d81), by table; it had no `attributes` table either."""


@pytest.fixture(scope="module")
def old_build(built: Recipe, tmp_path_factory: pytest.TempPathFactory) -> Recipe:
    recipe = copy_build(built, tmp_path_factory.mktemp("old"), report={"enabled": True})
    m = recipe.manifests_dir
    (m / "attributes.parquet").unlink()
    for table, added in PREVIOUS_RELEASE.items():
        t = pq.read_table(m / f"{table}.parquet")
        pq.write_table(t.drop_columns(added), m / f"{table}.parquet")
    shutil.rmtree(recipe.report_dir, ignore_errors=True)
    return recipe


def test_every_reading_command_reads_an_old_build_or_says_what_to_run(old_build: Recipe, capsys) -> None:
    text = format_status(old_build, stage_statuses(old_build))
    assert "pairs" in text and "swap_eval" in text
    pairs = read_frame(old_build.manifests_dir, "pairs", ok_only=True)
    assert pairs.height and pairs["match"].is_null().all()  # the columns it lacks read as null
    problems = verify_build(old_build)
    assert problems and all("earlier version of ltxa_data" in p for p in problems), problems
    assert any(p.startswith("pairs: written by an earlier version of ltxa_data (no match, value, "
                            "reference_identity_ids); run `ltxa-data build`") for p in problems)
    assert main(["verify", str(old_build.base_dir / "recipe.yaml")]) == 1
    err = capsys.readouterr()
    assert "Traceback" not in err.out + err.err and "bring it up to date" in err.out + err.err
    key = pairs["key"][0]
    assert "WHY THESE REFERENCES" in explain(old_build, key)
    assert write_report(old_build).is_file()
    assert eval_plan(old_build).cases


def test_build_brings_an_old_build_up_to_date(old_build: Recipe, tmp_path: Path) -> None:
    recipe = copy_build(old_build, tmp_path)
    build(recipe, progress=False)
    assert verify_build(recipe) == []
    assert set(read_frame(recipe.manifests_dir, "pairs", ok_only=True)["match"]) == {"identity"}
    assert pl.read_parquet(recipe.manifests_dir / "attributes.parquet").height == 0
