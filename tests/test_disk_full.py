"""A full disk: the output on a tmpfs too small for what the build writes, in a private mount namespace
(`unshare -m`, root). The build stops with a message naming the folder, what is free and what remains, and what to
do; no video is blamed; after space is freed, the same command resumes to the manifests a clean build makes. A build
that clearly cannot fit is refused before any work, with the numbers."""

from __future__ import annotations

import functools
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe, load_recipe

from .conftest import copy_build, recipe_dict, write_recipe

CLI = "import sys; from ltxa_data.cli import main; sys.exit(main(sys.argv[1:]))"


@functools.cache
def mount_namespace_problem() -> str | None:
    """Why a private mount namespace with a tmpfs cannot be made here (None: it can)."""
    if shutil.which("unshare") is None:
        return "no unshare (util-linux)"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1M tmpfs /mnt && umount /mnt"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare -m / mount tmpfs failed: {probe.stderr.strip()}"


needs_mounts = pytest.mark.skipif(mount_namespace_problem() is not None, reason=str(mount_namespace_problem()))


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def in_small_disk(mnt: Path, source: Path, size_kib: int, steps: list[str], timeout: float = 900) -> None:
    """Inside a private mount namespace: a tmpfs of `size_kib` at `mnt`, `source` copied to `mnt/out`, then each
    shell step (which may remount the tmpfs); the tmpfs is gone when this returns."""
    mnt.mkdir(parents=True, exist_ok=True)
    script = "\n".join([f"mount -t tmpfs -o size={size_kib}k tmpfs {shlex.quote(str(mnt))}",
                        f"cp -a {shlex.quote(str(source))} {shlex.quote(str(mnt / 'out'))}", *steps])
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr


def cli(*args: object, log: Path) -> str:
    """A shell step running the CLI, its output in `log` and its exit code in `log`.rc."""
    cmd = " ".join(shlex.quote(str(a)) for a in (sys.executable, "-c", CLI, *args))
    return f"{cmd} > {shlex.quote(str(log))} 2>&1; echo $? > {shlex.quote(str(log))}.rc"


def rc(log: Path) -> int:
    return int(Path(f"{log}.rc").read_text())


@needs_mounts
def test_a_full_disk_stops_the_build_clearly_and_a_rerun_resumes_to_a_clean_build(built: Recipe,
                                                                                     tmp_path: Path) -> None:
    reshard = {"samples_per_shard": 2}  # the shard stage writes every tar again
    clean = copy_build(built, tmp_path / "clean", shard=reshard)
    build(clean, progress=False)
    mnt, logs, saved = tmp_path / "mnt", tmp_path / "logs", tmp_path / "saved"
    logs.mkdir()
    recipe = load_recipe(write_recipe(tmp_path / "small", recipe_dict(
        Path(built.input.paths[0]), quality=True, output={"dir": str(mnt / "out")}, shard=reshard)))
    shards = folder_bytes(built.shards_dir)
    size = (folder_bytes(built.output_dir) + shards // 2) // 1024  # room for half the new tars
    in_small_disk(mnt, built.output_dir, size, [
        cli("build", recipe.base_dir / "recipe.yaml", "--no-progress", log=logs / "full.log"),
        cli("status", recipe.base_dir / "recipe.yaml", log=logs / "status.log"),
        f"mount -o remount,size={size + 4 * shards // 1024}k {shlex.quote(str(mnt))}",
        cli("build", recipe.base_dir / "recipe.yaml", "--no-progress", log=logs / "rerun.log"),
        cli("verify", recipe.base_dir / "recipe.yaml", log=logs / "verify.log"),
        f"cp -a {shlex.quote(str(recipe.manifests_dir))} {shlex.quote(str(saved))}"])
    full = (logs / "full.log").read_text()
    assert rc(logs / "full.log") == 1, full
    assert "error: the disk is full ([Errno 28] No space left on device" in full, full
    assert f"{mnt / 'out'} has " in full and "iB free" in full and "run the same build again" in full
    assert "Traceback" not in full
    assert "disk: " in (logs / "status.log").read_text()
    assert rc(logs / "rerun.log") == 0, (logs / "rerun.log").read_text()
    assert rc(logs / "verify.log") == 0, (logs / "verify.log").read_text()
    for table, cols in (("shards", ["key", "split", "shard", "offset", "nbytes", "sample_hash", "status", "error"]),
                        ("pairs", ["key", "split", "reference_ids", "status", "error"]),
                        ("targets", ["target_id", "status", "error"])):
        got = pl.read_parquet(saved / f"{table}.parquet", columns=cols)
        want = pl.read_parquet(clean.manifests_dir / f"{table}.parquet", columns=cols)
        assert got.equals(want), table  # nothing blamed on a video, nothing lost


@needs_mounts
def test_a_build_that_cannot_fit_is_refused_before_any_work(built: Recipe, tmp_path: Path) -> None:
    mnt, logs = tmp_path / "mnt", tmp_path / "logs"
    logs.mkdir()
    source = tmp_path / "unsharded"
    shutil.copytree(built.output_dir, source)
    shutil.rmtree(source / "shards")  # the samples are still to write, in the recipe's estimate
    for p in (source / "manifests").glob("shards.parquet"):
        p.unlink()
    recipe = load_recipe(write_recipe(tmp_path / "small", recipe_dict(
        Path(built.input.paths[0]), quality=True, output={"dir": str(mnt / "out")})))
    size = folder_bytes(source) // 1024 + 2048
    in_small_disk(mnt, source, size, [cli("build", recipe.base_dir / "recipe.yaml", "--no-progress",
                                          log=logs / "build.log")])
    out = (logs / "build.log").read_text()
    assert rc(logs / "build.log") == 2, out
    assert f"output.dir {mnt / 'out'}: " in out and "iB free, and the shards still to write take about" in out
    assert "samples x" in out and "set output.dir to a larger disk" in out
    assert " -> " not in out  # no stage ran
