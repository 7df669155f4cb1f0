"""Resumability: a build killed with SIGKILL mid-stage and rerun ends with the same manifests as an
uninterrupted build, and no truncated tar ever carries a final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe, load_recipe
from ltxa_data.schemas import TABLES
from ltxa_data.state import StageState
from ltxa_data.storage import table_path

from .conftest import copy_build, recipe_dict, write_recipe


def _kill_when(recipe_path: Path, ready, timeout: float = 240.0) -> None:
    """Start a build in its own process group and SIGKILL the whole group once `ready()` is true."""
    proc = subprocess.Popen([sys.executable, "-m", "ltxa_data.cli", "build", str(recipe_path), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail("the build finished before it could be killed mid-stage")
            if time.monotonic() > deadline:
                pytest.fail("the build never reached the point to kill it")
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _markers(recipe: Recipe, table: str) -> int:
    return len(list(StageState(recipe, table).dir.glob("part-*.done")))


def _assert_no_partial_tar(recipe: Recipe) -> None:
    for tar_path in recipe.shards_dir.rglob("*.tar"):
        with tarfile.open(tar_path) as tar:  # a truncated tar raises here or while reading
            for m in tar:
                f = tar.extractfile(m)
                assert f is not None and len(f.read()) == m.size, tar_path


def test_sigkill_mid_stage_then_rerun_equals_uninterrupted_build(built: Recipe, corpus: Path, tmp_path: Path) -> None:
    path = write_recipe(tmp_path, recipe_dict(corpus, quality=True))
    recipe = load_recipe(path)

    # Killed while the turns stage has some partitions done and others running in the pool.
    _kill_when(path, lambda: _markers(recipe, "turns") > 0)
    assert not table_path(recipe.manifests_dir, "voices").exists()

    # Killed again while shards are being written: some tars done, others half-written.
    _kill_when(path, lambda: _markers(recipe, "shards") >= 1 and any(recipe.shards_dir.rglob(".*.tmp")))
    _assert_no_partial_tar(recipe)
    assert list(recipe.shards_dir.rglob(".*.tmp")), "the kill landed while a tar was being written"

    reports = build(recipe, progress=False)
    ran = {r.stage: r.ran for r in reports}
    assert ran["scan"] == ran["diarize"] == 0, "finished stages are not redone"
    assert 0 < ran["shard"] < reports[-1].partitions, "only unfinished shard partitions are redone"
    _assert_no_partial_tar(recipe)
    assert not list(recipe.output_dir.rglob(".*.tmp")), "the rerun sweeps the killed writers' temp files"
    for name in TABLES:
        resumed_table = table_path(recipe.manifests_dir, name).read_bytes()
        assert resumed_table == table_path(built.manifests_dir, name).read_bytes(), name
    reference = {p.relative_to(built.shards_dir): p.read_bytes() for p in built.shards_dir.rglob("*.tar")}
    resumed = {p.relative_to(recipe.shards_dir): p.read_bytes() for p in recipe.shards_dir.rglob("*.tar")}
    assert resumed == reference


def test_a_kill_between_table_and_marker_never_lets_old_settings_reuse_the_new_table(
    built: Recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ltxa_data.state as state

    recipe = copy_build(built, tmp_path / "revert", pairs={"seed": 99})
    real = state.write_json_atomic

    def killed_before_marker(path: Path, obj: object) -> None:
        if path.name.startswith("part-") and "/pairs/" in path.as_posix():
            raise KeyboardInterrupt("killed")
        real(path, obj)

    monkeypatch.setattr(state, "write_json_atomic", killed_before_marker)
    with pytest.raises(KeyboardInterrupt):
        build(recipe, progress=False)
    monkeypatch.setattr(state, "write_json_atomic", real)

    # Back to the original settings, which the killed run's old pairs marker was written for.
    recipe = load_recipe(write_recipe(tmp_path / "revert", recipe_dict(Path(built.input.paths[0]), quality=True)))
    ran = {r.stage: r.ran for r in build(recipe, progress=False)}
    assert ran["pairs"] == 1, "the half-committed partition is redone"
    pairs = table_path(recipe.manifests_dir, "pairs").read_bytes()
    assert pairs == table_path(built.manifests_dir, "pairs").read_bytes()
