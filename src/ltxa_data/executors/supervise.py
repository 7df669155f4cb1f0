"""What both executors do when a worker dies or hangs: the retry policy, shared so that a death costs
the same on a process pool and on Ray.

A partition whose worker dies is retried once as it was, then `careful` (one item at a time); an item
in flight at two deaths is poisoned: it comes back as its failed row ("worker killed by signal 9 ...")
and everything else in the partition runs. Deaths that every item causes stop the run with the stage's
advice.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import isolation
from ..errors import SystemicError
from .jobs import Job

log = logging.getLogger(__name__)

STRIKES = 2
"""Deaths with an item in flight that make it a failed row."""
SYSTEMIC_ITEMS = 5
"""Items that each killed their workers twice, with no item finished anywhere, that stop the run: fewer
could be a few hostile files that happen to come first."""
LOST_NODES = 3
"""Times one partition may lose its worker with its node (a cluster's, not the items' doing) before the run
stops."""
SETUP_TIMEOUT_S = 900.0
"""Starting a worker process and loading its models may take this long before it counts as hung."""


@dataclass
class Task:
    """One partition on its way through a worker: what it must skip and how carefully it runs."""

    index: int
    key: str
    item: Any
    poison: dict[str, str] = field(default_factory=dict)
    careful: bool = False
    deaths: int = 0
    setup_deaths: int = 0
    """Deaths while loading (setup), counted apart from deaths on items: one of each is not systemic."""
    blank_deaths: int = 0
    lost: int = 0
    """Workers lost with their node: retried as they were, with no item blamed."""
    watch: Path | None = None


def death_cause(exitcode: int | None) -> str:
    """'worker killed by signal 9 (SIGKILL: out of memory?)' from a process's exit code (negative: a signal)."""
    if exitcode is None:
        return "worker died"
    if exitcode >= 0:
        return f"worker exited with code {exitcode}"
    n = -exitcode
    try:
        name = signal.Signals(n).name
    except ValueError:
        name = f"signal {n}"
    hint = {signal.SIGKILL: ": out of memory?", signal.SIGSEGV: ": a crash in native code",
            signal.SIGABRT: ": aborted", signal.SIGBUS: ": a crash in native code"}.get(n, "")
    return f"worker killed by signal {n} ({name}{hint})"


_FATAL = {"Segmentation fault": signal.SIGSEGV, "Aborted": signal.SIGABRT, "Bus error": signal.SIGBUS,
          "Floating-point exception": signal.SIGFPE, "Illegal instruction": signal.SIGILL}


def fault_path(watch_dir: Path, host: str, pid: int) -> Path:
    return watch_dir / f"fault-{host}-{pid}.txt"


def fault_cause(watch_dir: Path | None, state: dict[str, Any]) -> str:
    """How a worker ended, from what its fault handler wrote: a fatal signal's name, or nothing, which
    (a worker that did not exit by itself) means SIGKILL, most often the out-of-memory killer."""
    if watch_dir is not None and state.get("pid"):
        path = fault_path(watch_dir, str(state.get("host")), int(state["pid"]))
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        for name, sig in _FATAL.items():
            if f"Fatal Python error: {name}" in text:
                return death_cause(-sig)
        if path.exists():
            return death_cause(-signal.SIGKILL)
    return "worker died"


def hang_cause(job: Job) -> str:
    return f"no result after {job.item_timeout_s:g} s (worker stopped)"


class Supervisor:
    """The queue of tasks and the policy for deaths; executors call `next`, `done`, `died`, `hung`."""

    def __init__(self, job: Job, items: list[Any]) -> None:
        self.job = job
        self.queue: deque[Task] = deque()
        for i, it in enumerate(items):
            key = str(getattr(it, "key", "")) or str(i)  # a Partition's key names its watch file
            watch = job.watch_dir / f"{key}.json" if job.watch_dir is not None else None
            self.queue.append(Task(i, key, it, watch=watch))
        if job.watch_dir is not None:
            job.watch_dir.mkdir(parents=True, exist_ok=True)
        self.strikes: Counter[str] = Counter()
        self.poison: dict[str, str] = {}
        self.items_done = 0
        self._seen: dict[int, tuple[Any, float]] = {}

    def watch_state(self, task: Task) -> dict[str, Any]:
        """What `task`'s worker last said it was doing (empty when it said nothing)."""
        return (isolation.read_watch(task.watch) if task.watch is not None else None) or {}

    def cleanup(self) -> None:
        """Remove the workers' fault files (the map is over)."""
        if self.job.watch_dir is not None:
            for p in self.job.watch_dir.glob("fault-*.txt"):
                p.unlink(missing_ok=True)

    def next(self) -> Task | None:
        """The next task to run, or None when none is waiting."""
        if not self.queue:
            return None
        task = self.queue.popleft()
        task.poison = dict(self.poison)
        if task.watch is not None:
            task.watch.unlink(missing_ok=True)
        self._seen[task.index] = (None, time.monotonic())
        return task

    def done(self, task: Task) -> None:
        state = self.watch_state(task)
        self.items_done += int(state["finished"]) if state else 1
        self._seen.pop(task.index, None)
        if task.watch is not None:
            task.watch.unlink(missing_ok=True)

    def hung(self, task: Task, now: float | None = None) -> bool:
        """Whether `task` made no progress (no item started or finished) for the job's timeout (for
        starting a worker and loading its models: `SETUP_TIMEOUT_S` at least)."""
        if self.job.item_timeout_s is None:
            return False
        now = time.monotonic() if now is None else now
        state = self.watch_state(task)
        mark = state.get("started"), state.get("finished"), state.get("phase")
        last, since = self._seen.get(task.index, (None, now))
        if mark != last:
            self._seen[task.index] = (mark, now)
            return False
        limit = self.job.item_timeout_s
        if state.get("phase", "setup") == "setup":
            limit = max(limit, SETUP_TIMEOUT_S)
        return now - since > limit

    def died(self, task: Task, cause: str) -> None:
        """A worker died (or was stopped) running `task`: requeue it with what was learnt, or stop the
        run when the deaths are systemic. Each death strikes an item in flight, or counts against setup or
        the gaps between items (two of those stop the run), so a partition cannot loop forever."""
        task.deaths += 1
        self._seen.pop(task.index, None)
        state = self.watch_state(task)
        inflight = list(state.get("inflight", []))
        self.items_done += int(state.get("finished", 0))
        stage = f"stage '{self.job.name}'"
        if state.get("phase", "setup") == "setup":
            task.setup_deaths += 1
            if task.setup_deaths >= STRIKES:
                raise SystemicError(f"{stage}: {cause} while loading (setup) for partition {task.key}, "
                                    f"{task.setup_deaths} times; {self.job.advice}")
        elif not inflight:
            task.blank_deaths += 1
            if task.blank_deaths >= STRIKES:
                raise SystemicError(f"{stage}: {cause} on partition {task.key} between items, "
                                    f"{task.blank_deaths} times; {self.job.advice}")
        for s in inflight:
            self.strikes[s] += 1
            if self.strikes[s] >= STRIKES:
                self.poison[s] = f"{cause} while reading it ({self.strikes[s]} times)"
        if len(self.poison) >= SYSTEMIC_ITEMS and self.items_done == 0:
            raise SystemicError(f"{stage}: every item tried so far stopped its worker ({cause}: "
                                f"{', '.join(sorted(self.poison))}) and none finished: this is not one bad file; "
                                f"{self.job.advice}")
        task.careful = True
        self.queue.appendleft(task)

    def lost(self, task: Task, cause: str) -> None:
        """`task`'s worker went with its node: run the partition again as it was, blaming no item; a
        partition that loses `LOST_NODES` nodes stops the run."""
        task.lost += 1
        self._seen.pop(task.index, None)
        self.items_done += int(self.watch_state(task).get("finished", 0))
        if task.lost >= LOST_NODES:
            raise SystemicError(f"stage '{self.job.name}': partition {task.key}: {cause}, {task.lost} times: check "
                                "the cluster's nodes (`ray status`) and why they leave (memory, preemption)")
        log.warning("stage '%s': partition %s: %s; running it again", self.job.name, task.key, cause)
        self.queue.appendleft(task)


class WorkerRuntime:
    """The worker side: sets the stage up on its first task (so a death in setup is seen as one) and
    runs each task under its watch."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.fn: Any = None

    def run(self, task: Task) -> Any:
        watch = isolation.Watch(task.watch, task.poison, task.careful)
        with isolation.watching(watch):
            if self.fn is None:
                if task.watch is not None:
                    # A fatal signal's name, for executors that cannot see how a process ended (Ray).
                    self._fault_file = fault_path(task.watch.parent, socket.gethostname(), os.getpid()).open("w")
                    faulthandler.enable(self._fault_file, all_threads=False)
                self.fn = self.factory()
            watch.set_phase("items")
            return self.fn(task.item)
