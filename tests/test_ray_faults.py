"""Ray faults of long builds, each in a network namespace: a local cluster that cannot start fails within a
bounded time saying what to check; a node lost under a partition (twice) costs a retry, not its files; a
cluster that disappears stops the build with a clear message, and the build resumes locally to the same
manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from ltxa_data.pipeline import build
from ltxa_data.recipe import load_recipe
from ltxa_data.stages import STAGES
from ltxa_data.storage import read_frame

from .conftest import RAY_ENV, REPO, needs_ray, recipe_dict, write_recipe
from .fixtures.crashing import CrashingScan
from .netns import needs_netns, run_offline

pytestmark = [needs_netns, needs_ray]


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    """Six clips whose scan takes seconds each (`slow-` names), long enough to lose a node under one."""
    folder = tmp_path_factory.mktemp("slow") / "clips"
    folder.mkdir()
    for i, clip in enumerate(sorted(corpus.rglob("*.mp4"))[:6]):
        shutil.copy(clip, folder / f"slow-{i}.mp4")
    return folder


def _recipe(folder: Path, clips: Path, **executor: object) -> Path:
    return write_recipe(folder, recipe_dict(clips, scan={"files_per_partition": 1},
                                            executor={"workers": 2, **executor}))


def _videos(path: Path) -> pl.DataFrame:
    return read_frame(load_recipe(path).manifests_dir, "videos").sort("video_id")


def test_a_local_cluster_that_cannot_start_fails_at_once_saying_what_to_check(tmp_path: Path, slow: Path) -> None:
    """Loopback down (a namespace whose `lo` was never brought up): Ray alone waits for its GCS for many
    minutes; the build stops at once. Then a cluster that takes longer than `start_timeout_s`, and an address
    where no cluster listens."""
    path = _recipe(tmp_path / "down", slow, kind="ray", ray={"node_ip_address": "127.0.0.1"})
    began = time.monotonic()
    done = subprocess.run([shutil.which("unshare") or "unshare", "--net", sys.executable, "-m", "ltxa_data.cli",
                           "build", str(path), "--no-progress"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **RAY_ENV})
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - began < 60
    assert ("error: executor.kind ray: cannot start a local Ray cluster on 127.0.0.1: this machine cannot listen "
            "and connect there ([Errno 101] Network is unreachable)") in done.stderr, done.stderr
    assert "(`ip addr`; `lo` for 127.0.0.1)" in done.stderr

    path = _recipe(tmp_path / "late", slow, kind="ray",
                   ray={"node_ip_address": "127.0.0.1", "num_cpus": 2, "start_timeout_s": 1})
    began = time.monotonic()
    late = run_offline(["-m", "ltxa_data.cli", "build", str(path), "--no-progress"], env=RAY_ENV, cwd=REPO,
                       timeout=300, check=False)
    assert late.returncode == 1, late.stderr
    assert time.monotonic() - began < 45, "stopped after the timeout, not when Ray itself gives up (60 s more)"
    assert ("error: executor.kind ray: a local Ray cluster did not start within 1 s "
            "(executor.ray.start_timeout_s)") in late.stderr, late.stderr[-2000:]
    assert not list(load_recipe(path).manifests_dir.glob("*.parquet"))

    path = _recipe(tmp_path / "nowhere", slow, kind="ray", ray={"address": "127.0.0.1:9"})
    nowhere = run_offline(["-m", "ltxa_data.cli", "build", str(path), "--no-progress"], env=RAY_ENV, cwd=REPO,
                          timeout=120, check=False)
    assert nowhere.returncode == 1
    assert ("error: executor.ray.address: cannot reach 127.0.0.1:9 ([Errno 111] Connection refused): check that "
            "the cluster is up") in nowhere.stderr, nowhere.stderr[-2000:]


def _faults(mode: str, path: Path) -> dict:
    done = run_offline(["-m", "tests.fixtures.ray_nodes", mode, str(path)], env={**RAY_ENV, "LTXA_TEST_SLOW_S": "4"},
                       cwd=REPO, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_lost_node_costs_a_retry_and_a_lost_cluster_stops_the_build_which_resumes_locally(
        tmp_path: Path, slow: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LTXA_TEST_SLOW_S", "0.2")
    clean = _recipe(tmp_path / "clean", slow)
    build(load_recipe(clean), only=["scan"], progress=False, stages=(CrashingScan, *STAGES[1:]))
    expected = _videos(clean)
    assert expected.height == 6 and set(expected["status"]) == {"ok"}

    # The worker node killed under the same partition twice; a new node joins each time.
    ray = {"address": "127.0.0.1:6391"}
    nodes = _recipe(tmp_path / "nodes", slow, kind="ray", item_timeout_s=120, ray=ray)
    out = _faults("lose-nodes", nodes)
    assert out["rc"] == 0, out["stderr"][-3000:]
    assert len(out["faults"]) == 2 and len(set(out["faults"])) == 1, out["faults"]
    lost = [ln for ln in out["stderr"].splitlines() if ln.endswith("its Ray node died; running it again")]
    key = out["faults"][0].rsplit(" ", 1)[1]
    assert sum(key in ln for ln in lost) == 2, out["stderr"][-3000:]
    assert _videos(nodes).equals(expected), "no file is blamed for its node: the same rows as a clean build"

    # The whole cluster stopped mid-build: a clear stop, what finished is kept, a local run goes on from it.
    gone = _recipe(tmp_path / "gone", slow, kind="ray", item_timeout_s=120, ray=ray)
    out = _faults("lose-cluster", gone)
    assert out["rc"] == 1 and out["seconds_after"] < 58, "stopped before Ray ends the driver itself (60 s)"
    assert "SystemicError: stage 'scan': the Ray cluster is gone (its GCS at 127.0.0.1:6391 takes no connection" \
        in out["stderr"], out["stderr"][-3000:]
    assert "run the build again on a new cluster, or with executor.kind: local" in out["stderr"]
    recipe = load_recipe(gone)
    finished = len(list((recipe.manifests_dir / ".state/videos").glob("part-*.done")))
    assert finished >= 1
    local = _recipe(tmp_path / "gone", slow)  # the same folder and output, now on the local executor
    [report] = build(load_recipe(local), only=["scan"], progress=False, stages=(CrashingScan, *STAGES[1:]))
    assert report.ran == report.partitions - finished, "the partitions done on the cluster are kept"
    assert _videos(local).equals(expected)
