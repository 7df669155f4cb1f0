"""Chaos: a build of the test corpus whose workers and driver are SIGKILLed at seeded points, then run once more
to the end, has the same manifests and shards, byte for byte, as an uninterrupted build.

Worker and driver kills alternate, so no driver run sees two worker deaths: an item in flight at two deaths in
one run becomes its failed row by design (`executors.supervise.STRIKES`), which is not a difference to find here.
Kill points are counted in partition completion markers, not seconds, so the schedule suits any machine speed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from ltxa_data.isolation import read_watch
from ltxa_data.pipeline import build
from ltxa_data.recipe import Recipe, load_recipe
from ltxa_data.schemas import TABLES
from ltxa_data.stages import STAGES
from ltxa_data.state import StageState
from ltxa_data.storage import TEMP_GLOB, table_path

from .conftest import recipe_dict, write_recipe

SEED = 1
ROUNDS = 3
"""Each round kills one worker, then the driver."""
MAX_DELAY_S = 1.0
"""The longest seeded pause between reaching a kill's marker count and the kill."""
BUSY_WAIT_S = 3.0
"""How long a worker kill waits for a worker that is running a partition before taking an idle one."""
DEADLINE_S = 240.0
POLL_S = 0.02


@dataclass
class Kill:
    """One planned kill: what, after how many completion markers, after what pause, and which worker (a
    fraction of the candidates)."""

    kind: str
    at: int
    delay: float
    pick: float


@dataclass
class Landed:
    """A kill that happened: when (markers on disk) and where (the stage with work left, or the worker's)."""

    kind: str
    markers: int
    where: str


def _schedule(rng: random.Random, markers: int) -> list[Kill]:
    """ROUNDS worker-then-driver pairs at distinct marker counts, all at least three short of the clean build's, so
    that the build cannot finish before a kill."""
    points = sorted(rng.sample(range(1, markers - 2), 2 * ROUNDS))
    return [Kill("worker" if i % 2 == 0 else "driver", at, rng.uniform(0, MAX_DELAY_S), rng.random())
            for i, at in enumerate(points)]


def _markers(recipe: Recipe) -> int:
    return sum(len(list(StageState(recipe, t).dir.glob("part-*.done"))) for t in TABLES)


def _stage_left(recipe: Recipe) -> str:
    """The first stage, in pipeline order, whose last plan has partitions without a marker."""
    for stage in STAGES:
        progress = StageState(recipe, stage.table).progress()
        if progress is None or progress[0] < progress[1]:
            return stage.name
    return "none"


def _workers(driver: int) -> list[psutil.Process]:
    """The driver's live pool workers (spawned children; not multiprocessing's resource tracker)."""
    try:
        children = psutil.Process(driver).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for p in children:
        try:
            if any("spawn_main" in a for a in p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return sorted(found, key=lambda p: p.pid)


def _running(recipe: Recipe) -> dict[int, str]:
    """Worker pid -> "table (phase)" for every partition a worker says it is running."""
    running = {}
    for table in TABLES:
        for path in StageState(recipe, table).watch_dir.glob("*.json"):
            state = read_watch(path) or {}
            if state.get("pid"):
                running[int(state["pid"])] = f"{table} ({state.get('phase', 'setup')})"
    return running


class Chaos:
    """A build run as `ltxa-data build` in its own process group, killed and restarted on schedule."""

    def __init__(self, recipe_path: Path, recipe: Recipe) -> None:
        self.recipe_path = recipe_path
        self.recipe = recipe
        self.proc: subprocess.Popen[bytes] | None = None

    def _driver(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ltxa_data.cli", "build", str(self.recipe_path), "--no-progress"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        """Poll `ready` until true; fail when the build ends first or the deadline passes."""
        proc = self._driver()
        deadline = time.monotonic() + DEADLINE_S
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the build ended (exit {proc.returncode}) before {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} never happened within {DEADLINE_S:g} s")
            time.sleep(POLL_S)

    def kill(self, n: int, kill: Kill) -> Landed:
        """Wait for the kill's point and pause, then kill; a killed driver is restarted by the next kill."""
        self.wait_for(f"kill {n} ({kill.kind}): {kill.at} completion markers", lambda: _markers(self.recipe) >= kill.at)
        until = time.monotonic() + kill.delay
        self.wait_for(f"kill {n} ({kill.kind}): its {kill.delay:.2f} s pause", lambda: time.monotonic() >= until)
        return self._kill_worker(n, kill) if kill.kind == "worker" else self._kill_driver(n)

    def _kill_worker(self, n: int, kill: Kill) -> Landed:
        driver = self._driver().pid
        since = time.monotonic()
        landed: list[tuple[psutil.Process, str]] = []

        def killed() -> bool:
            workers = _workers(driver)
            running = _running(self.recipe)
            pool = [p for p in workers if p.pid in running]
            if not pool and time.monotonic() - since > BUSY_WAIT_S:
                pool = workers
            if not pool:
                return False
            target = pool[int(kill.pick * len(pool))]
            try:
                target.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                return False
            landed.append((target, running.get(target.pid, f"idle, {_stage_left(self.recipe)} left")))
            return True

        self.wait_for(f"kill {n} (worker): a live worker", killed)
        target, where = landed[0]
        self.wait_for(f"kill {n} (worker): worker {target.pid} gone",
                      lambda: target.pid not in {p.pid for p in _workers(driver)})
        return Landed("worker", _markers(self.recipe), where)

    def _kill_driver(self, n: int) -> Landed:
        proc = self._driver()
        where = _stage_left(self.recipe)
        if proc.poll() is not None:
            pytest.fail(f"the build ended (exit {proc.returncode}) before kill {n} (driver)")
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, f"kill {n}: the driver exited by itself"
        self.proc = None
        return Landed("driver", _markers(self.recipe), where)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _difference(name: str, table: Path, reference: Path) -> str:
    """The first way `table` differs from the clean build's, in words."""
    ours, clean = pq.read_table(table), pq.read_table(reference)
    if ours.schema != clean.schema:
        return f"{name}: schema differs:\n{ours.schema}\nclean build:\n{clean.schema}"
    if ours.num_rows != clean.num_rows:
        return f"{name}: {ours.num_rows} rows, the clean build {clean.num_rows}"
    for i, (row, ref) in enumerate(zip(ours.to_pylist(), clean.to_pylist(), strict=True)):
        columns = [c for c in row if row[c] != ref[c]]
        if columns:
            return (f"{name} row {i}: {columns} = {[row[c] for c in columns]}, "
                    f"the clean build {[ref[c] for c in columns]}")
    return f"{name}: same rows, different bytes"


@pytest.mark.slow
def test_seeded_sigkills_of_workers_and_driver_then_a_rerun_equal_a_clean_build(
    built: Recipe, corpus: Path, tmp_path: Path
) -> None:
    path = write_recipe(tmp_path, recipe_dict(corpus, quality=True))
    recipe = load_recipe(path)
    markers = _markers(built)
    assert markers - 3 >= 2 * ROUNDS, "the clean build has too few partitions for the schedule"
    schedule = _schedule(random.Random(SEED), markers)

    chaos = Chaos(path, recipe)
    landed: list[Landed] = []
    try:
        for n, kill in enumerate(schedule, 1):
            landed.append(chaos.kill(n, kill))
    finally:
        chaos.stop()
    story = "; ".join(f"{k.kind} at {k.markers}/{markers} markers ({k.where})" for k in landed)
    print(f"seed {SEED}: {story}")
    assert [k.kind for k in landed] == ["worker", "driver"] * ROUNDS, story

    build(recipe, progress=False)
    assert not list(recipe.output_dir.rglob(TEMP_GLOB)), "temp files of killed writers are left"
    for name in TABLES:
        ours, reference = table_path(recipe.manifests_dir, name), table_path(built.manifests_dir, name)
        assert ours.read_bytes() == reference.read_bytes(), f"{_difference(name, ours, reference)}\n({story})"
    reference_tars = {p.relative_to(built.shards_dir): p.read_bytes() for p in built.shards_dir.rglob("*.tar")}
    tars = {p.relative_to(recipe.shards_dir): p.read_bytes() for p in recipe.shards_dir.rglob("*.tar")}
    assert tars.keys() == reference_tars.keys(), story
    assert [p for p in tars if tars[p] != reference_tars[p]] == [], story
