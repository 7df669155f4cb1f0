"""Executors: a worker killed by a signal or hung costs its file, not the build, on the local pool and on
Ray; GPU stages get one device per worker; a build on a Ray cluster (started as docs/how-it-works.md says, inside
a network namespace with only loopback) writes the same manifests as the local executor and resumes
either's work."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from ltxa_data.errors import SystemicError
from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe, load_recipe
from ltxa_data.stages import STAGES
from ltxa_data.storage import read_frame

from .conftest import RAY_ENV, REPO, needs_ray, recipe_dict, write_recipe
from .fixtures.crashing import CpuProbeScan, CrashingScan, GpuProbeScan
from .netns import needs_netns, run_offline

CRASHES = ("segv", "abort", "kill", "hang")
MESSAGES = {
    "segv": "worker killed by signal 11 (SIGSEGV: a crash in native code) while reading it (2 times)",
    "abort": "worker killed by signal 6 (SIGABRT: aborted) while reading it (2 times)",
    "kill": "worker killed by signal 9 (SIGKILL: out of memory?) while reading it (2 times)",
    "hang": "no result after 3 s (worker stopped) while reading it (2 times)",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    """Four good clips and four copies of one named to crash or hang the worker that reads them."""
    folder = tmp_path_factory.mktemp("hostile") / "clips"
    folder.mkdir()
    clips = sorted(corpus.rglob("*.mp4"))[:4]
    for i, c in enumerate(clips):
        shutil.copy(c, folder / f"good-{i}.mp4")
    for mode in CRASHES:
        shutil.copy(clips[0], folder / f"crash-{mode}.mp4")
    return folder


def _hostile_recipe(folder: Path, clips: Path, **executor: object) -> Recipe:
    data = recipe_dict(clips, scan={"files_per_partition": 2},
                       executor={"workers": 2, "item_timeout_s": 3, **executor})
    return load_recipe(write_recipe(folder, data))


def _assert_isolated(recipe: Recipe) -> None:
    videos = read_frame(recipe.manifests_dir, "videos").sort("rel_path")
    rows = {r["rel_path"]: r for r in videos.to_dicts()}
    assert len(rows) == 8
    for i in range(4):
        assert rows[f"good-{i}.mp4"]["status"] == "ok", rows[f"good-{i}.mp4"]["error"]
    for mode in CRASHES:
        r = rows[f"crash-{mode}.mp4"]
        assert r["status"] == "failed" and r["error"] == f"crash-{mode}.mp4: {MESSAGES[mode]}"


def test_a_worker_killed_or_hung_costs_its_file_on_the_local_executor(tmp_path: Path, hostile: Path) -> None:
    recipe = _hostile_recipe(tmp_path, hostile)
    stages = (CrashingScan, *STAGES[1:])
    [report] = build(recipe, only=["scan"], progress=False, stages=stages)
    assert report.counts == {"ok": 4, "failed": 4}
    _assert_isolated(recipe)
    assert not list((recipe.manifests_dir / ".state/videos/watch").glob("*")), "watch files are cleaned up"
    [again] = build(recipe, only=["scan"], progress=False, stages=stages)
    assert again.ran == 0, "the failed rows are finished work: a rerun does not meet the crashes again"


def test_deaths_on_every_item_stop_the_run_naming_the_stage_and_the_remedy(tmp_path: Path, hostile: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(6):
        shutil.copy(hostile / "crash-kill.mp4", clips / f"crash-kill-{i}.mp4")
    recipe = _hostile_recipe(tmp_path, clips)
    with pytest.raises(SystemicError) as e:
        build(recipe, only=["scan"], progress=False, stages=(CrashingScan, *STAGES[1:]))
    msg = str(e.value)
    assert "stage 'scan'" in msg and "signal 9" in msg and "executor.workers" in msg, msg


def _clean_recipe(folder: Path, hostile: Path, **executor: object) -> Path:
    """The good clips alone, one per partition."""
    clips = folder / "clean"
    clips.mkdir(parents=True)
    for p in hostile.glob("good-*"):
        shutil.copy(p, clips / p.name)
    return write_recipe(folder, {**recipe_dict(clips, scan={"files_per_partition": 1}), "executor": executor})


def _devices_by_worker(recipe: Recipe) -> dict[str, set[str]]:
    """CUDA_VISIBLE_DEVICES seen by each worker process, from the probe's labels."""
    by_pid: dict[str, set[str]] = {}
    for label in read_frame(recipe.manifests_dir, "videos").get_column("label").to_list():
        dev, pid = label.split("/")
        by_pid.setdefault(pid, set()).add(dev)
    return by_pid


def test_gpu_stages_get_one_device_per_worker_and_cpu_stages_none(tmp_path: Path, hostile: Path) -> None:
    """Fake GPUs 0 and 1, two workers per card: workers started each with one slot of the four."""
    recipe = load_recipe(_clean_recipe(tmp_path, hostile, gpus=[0, 1], workers_per_gpu=2, workers=1))
    build(recipe, only=["scan"], progress=False, stages=(GpuProbeScan, *STAGES[1:]))
    by_pid = _devices_by_worker(recipe)
    assert 2 <= len(by_pid) <= 4, "one worker per GPU slot (not executor.workers, which is 1)"
    assert all(len(d) == 1 and d <= {"0", "1"} for d in by_pid.values()), by_pid
    assert {d for ds in by_pid.values() for d in ds} == {"0", "1"}, "both cards are used"

    shutil.rmtree(recipe.output_dir)
    build(recipe, only=["scan"], progress=False, stages=(CpuProbeScan, *STAGES[1:]))
    by_pid = _devices_by_worker(recipe)
    assert len(by_pid) == 1 and set().union(*by_pid.values()) == {""}, "a CPU stage: its 1 worker sees no GPU"


@needs_netns
@needs_ray
def test_crashes_cost_their_file_and_gpu_slots_hold_on_ray(tmp_path: Path, hostile: Path) -> None:
    """The same hostile files on a local Ray cluster in a network namespace; then fake GPUs."""
    recipe = _hostile_recipe(tmp_path / "crash", hostile, kind="ray",
                             ray={"num_cpus": 2, "num_gpus": 2, "node_ip_address": "127.0.0.1"})
    run_offline(["-m", "tests.fixtures.crashing", str(tmp_path / "crash/recipe.yaml"), "crash"],
                env=RAY_ENV, cwd=REPO, timeout=300)
    _assert_isolated(recipe)

    path = _clean_recipe(tmp_path / "gpu", hostile, kind="ray", workers=2,
                         ray={"num_cpus": 4, "num_gpus": 2, "node_ip_address": "127.0.0.1"})
    run_offline(["-m", "tests.fixtures.crashing", str(path), "gpu"],
                env=RAY_ENV, cwd=REPO, timeout=300)
    gpu, cpu = (load_recipe(path.parent / f"{kind}.yaml") for kind in ("gpu", "cpu"))
    by_pid = _devices_by_worker(gpu)
    assert len(by_pid) >= 2, f"one actor per GPU of the cluster: {by_pid}"
    assert all(len(d) == 1 and d <= {"0", "1"} for d in by_pid.values()), by_pid
    assert set().union(*by_pid.values()) == {"0", "1"}, f"both cards are used: {by_pid}"
    assert set().union(*_devices_by_worker(cpu).values()) == {""}, "Ray unsets it for CPU actors; we clear it"


def _tables(recipe: Recipe) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_parquet(p) for p in sorted(recipe.manifests_dir.glob("*.parquet"))}


@needs_netns
@needs_ray
@pytest.mark.slow
def test_the_readme_cluster_recipe_builds_the_local_manifests_and_resumes_local_work(
        tmp_path: Path, built: Recipe, corpus: Path) -> None:
    """The cluster section of docs/how-it-works.md, followed on one node: `ray start --head`, a recipe with
    `executor.kind: ray` and `address: auto`, `ltxa-data build`. Then the same recipe over a copy of the
    local executor's finished build: nothing runs again."""
    ray_sections = {"kind": "ray", "workers": 2, "ray": {"address": "auto"}}
    fresh = write_recipe(tmp_path / "ray", recipe_dict(corpus, quality=True, executor=ray_sections))
    shutil.copytree(built.output_dir, tmp_path / "resumed/out")
    resumed = write_recipe(tmp_path / "resumed", recipe_dict(corpus, quality=True, executor=ray_sections))
    bin_dir = Path(sys.executable).parent
    script = f"""set -e
export PATH={bin_dir}:$PATH
ray start --head --node-ip-address=127.0.0.1 --port=6390 --num-cpus=2 --include-dashboard=false \\
    --disable-usage-stats >/dev/null
trap 'ray stop --force >/dev/null 2>&1' EXIT
ltxa-data build {fresh} --no-progress
echo RESUMED
ltxa-data build {resumed} --no-progress
"""
    out = run_offline(["-c", script], python="bash", env=RAY_ENV, cwd=REPO, timeout=900).stdout
    ray_build = load_recipe(fresh)
    local, on_ray = _tables(built), _tables(ray_build)
    assert sorted(local) == sorted(on_ray)
    for name, table in local.items():
        assert table.equals(on_ray[name]), f"manifest {name} differs between the local and Ray executors"
    resumed_lines = [ln for ln in out.split("RESUMED", 1)[1].splitlines() if "partitions in" in ln]
    assert resumed_lines and all(" ran 0/" in ln for ln in resumed_lines), out


def test_a_sample_that_kills_the_encoder_costs_that_sample(tmp_path: Path, built: Recipe,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder path (cutting threads ahead, batches of 3): a SIGKILL in a batch holding one sample.
    The retry runs one sample at a time, so the second death names it; every other sample is encoded."""
    from .conftest import copy_build
    from .fixtures.crashing import CrashingShards
    from .fixtures.random_ltx import write_random_ltx_checkpoint

    checkpoint = write_random_ltx_checkpoint(tmp_path / "ltx.safetensors")
    recipe = copy_build(built, tmp_path, targets={"size": 64},
                        encode={"backend": "ltx", "checkpoint": str(checkpoint), "device": "cpu", "batch_size": 3})
    pairs = read_frame(recipe.manifests_dir, "pairs")
    poison = pairs.get_column("key").sort()[0]
    monkeypatch.setenv("LTXA_TEST_CRASH_SAMPLE", poison)
    [report] = build(recipe, only=["shard"], progress=False, stages=(*STAGES[:-1], CrashingShards))
    shards = read_frame(recipe.manifests_dir, "shards")
    bad = shards.filter(pl.col("key") == poison).row(0, named=True)
    assert bad["status"] == "failed" and "worker killed by signal 9 (SIGKILL: out of memory?)" in bad["error"], bad
    assert report.counts == {"ok": pairs.height - 1, "failed": 1}
