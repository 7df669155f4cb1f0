"""Ray Core actors, one per worker, fed by our own `ray.wait` loop (Ray is an existing engine; we only
schedule partitions on it). Imported only when `executor.kind: ray`.

Not `ActorPool` nor Ray Data: the first loses the pool's other items at a dead actor, the second
restarts actors forever on a poison file. Here a dead or hung actor is killed and replaced, and
`Supervisor` decides what its partition costs, exactly as on the local executor.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SystemicError
from ..recipe import RayConfig
from .base import WorkerFactory
from .jobs import Job
from .ray_start import reachable, start
from .supervise import Supervisor, Task, WorkerRuntime, fault_cause, hang_cause

POLL_S = 0.5
CLUSTER_CHECK_S = 5.0
"""How often the driver checks that the cluster's GCS still takes connections."""
CLUSTER_GONE_S = 30.0
"""A GCS that takes no connection for this long is gone: long enough for a fault-tolerant GCS to restart, short
enough to speak before Ray's own driver ends the process, 60 s after its GCS went."""
PROBE_S = 60.0
"""How long Ray may call an actor unavailable before its partition runs again as lost (a file's crash gives a
quick verdict instead)."""
NODE_DIED = "because its node has died"
"""Ray's words (ActorDiedError) for an actor that went with its node."""


@dataclass
class _Unreachable:
    """An actor Ray calls unavailable, pinged until Ray says how it died (or `PROBE_S` passes)."""

    actor: Any
    task: Task
    deadline: float
    ping: Any = None
    """The pending ping's ref; None between pings."""
    next_ping: float = 0.0


class _Worker:
    """The actor. The factory travels pickled and is unpickled only after CUDA_VISIBLE_DEVICES is
    set: unpickling imports the stage, which may import torch."""

    def __init__(self, factory_bytes: bytes, gpus: float) -> None:
        if not gpus:
            # Ray unsets CUDA_VISIBLE_DEVICES for actors without a GPU: torch would then see every GPU.
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        self.factory_bytes = factory_bytes
        self.runtime: WorkerRuntime | None = None

    def run(self, task: Task) -> Any:
        # Unpickled in the first task, not the constructor: an error there reaches the driver as the
        # task's own exception, and a crash there is a death in setup.
        if self.runtime is None:
            self.runtime = WorkerRuntime(lambda: pickle.loads(self.factory_bytes)())
        return self.runtime.run(task)

    def ping(self) -> None:
        """Answers while the actor lives; on a dead one, raises Ray's verdict on how it died."""


class RayExecutor:
    """Actors on a Ray cluster: an existing one (`address: auto` or `ray://...`) or a local one started
    for the build. Each stage's actors ask for the stage's resources (`Job.resources`)."""

    def __init__(self, cfg: RayConfig) -> None:
        try:
            import ray
        except ImportError as e:
            raise SystemicError("executor.kind ray needs Ray: pip install 'ltxa-data[ray]' (on every node)") from e
        self.ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
            if cfg.address:
                kwargs["address"] = cfg.address
            else:
                kwargs.update(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, include_dashboard=cfg.include_dashboard)
                if cfg.node_ip_address:
                    kwargs["_node_ip_address"] = cfg.node_ip_address
            start(ray, cfg, kwargs)
            self._owns_cluster = True
        else:
            self._owns_cluster = False
        self._gcs: str | None = None  # None: not checked (Ray Client reaches the cluster through its proxy)
        with contextlib.suppress(Exception):
            if not ray.util.client.ray.is_connected():
                self._gcs = ray.get_runtime_context().gcs_address
        self._checked = time.monotonic()

    def _cluster_gone(self, job: Job) -> None:
        """Stop the build when the cluster's GCS takes no connection for `CLUSTER_GONE_S`: every actor is lost
        and no new one can start."""
        self._checked = time.monotonic()
        if not self._gcs:
            return
        deadline = self._checked + CLUSTER_GONE_S
        while (why := reachable(self._gcs, 2.0)) is not None:
            if time.monotonic() > deadline:
                raise SystemicError(f"stage '{job.name}': the Ray cluster is gone (its GCS at {self._gcs} takes no "
                                    f"connection: {why}). The partitions finished so far are kept: run the build "
                                    "again on a new cluster, or with executor.kind: local, and it goes on from them")
            time.sleep(1.0)

    def gpu_count(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def shutdown(self) -> None:
        if self._owns_cluster and self.ray.is_initialized():
            self.ray.shutdown()

    def _lost_or_died(self, e: Exception, job: Job, sup: Supervisor, task: Task) -> bool:
        """What Ray's verdict on a dead actor costs: nothing blamed when its node went (True) or the cluster
        stops the build, else a death as on the local executor (False)."""
        self._cluster_gone(job)
        if getattr(e, "preempted", False) or NODE_DIED in str(e):
            sup.lost(task, "its Ray node died")
            return True
        # Ray's error names no signal: the worker's fault handler does.
        sup.died(task, fault_cause(job.watch_dir, sup.watch_state(task)) if job.watch_dir
                 else f"worker died ({str(e).splitlines()[0][:200]})")
        return False

    def map(self, factory: WorkerFactory, items: Sequence[Any], job: Job | None = None) -> Iterator[Any]:
        ray = self.ray
        job = job or Job()
        if not items:
            return
        sup = Supervisor(job, list(items))
        res = job.resources
        options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus, "max_restarts": 0,
                                   "max_task_retries": 0}
        if job.env:
            options["runtime_env"] = {"env_vars": dict(job.env)}
        if res.memory_gb:
            options["memory"] = int(res.memory_gb * 2**30)
        actor_cls = ray.remote(_Worker).options(**options)
        blob = pickle.dumps(factory)
        idle: list[Any] = []
        running: dict[Any, tuple[Any, Task]] = {}  # result ref -> (actor, task)
        unreachable: list[_Unreachable] = []
        n_actors = 0

        def kill(actor: Any) -> None:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)

        def verdict(actor: Any, task: Task, e: Exception) -> None:
            nonlocal n_actors
            kill(actor)
            if self._lost_or_died(e, job, sup, task):
                # Idle actors on the lost node are dead too: handing them the retry would lose it again.
                for a in idle:
                    kill(a)
                n_actors -= len(idle)
                idle.clear()

        try:
            while True:
                while sup.queue and (idle or n_actors < job.workers):
                    task = sup.next()
                    assert task is not None
                    if idle:
                        actor = idle.pop()
                    else:
                        actor = actor_cls.remote(blob, res.gpus)
                        n_actors += 1
                    running[actor.run.remote(task)] = (actor, task)
                if not running and not unreachable:
                    return
                pings = {u.ping: u for u in unreachable if u.ping is not None}
                if running or pings:
                    ready, _ = ray.wait([*running, *pings], num_returns=1, timeout=POLL_S)
                else:
                    ready = []
                    time.sleep(POLL_S)
                for ref in ready:
                    if ref in pings:
                        u = pings[ref]
                        u.ping = None
                        try:
                            ray.get(ref)
                        except ray.exceptions.ActorUnavailableError:
                            u.next_ping = time.monotonic() + 1.0
                            continue
                        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                            unreachable.remove(u)
                            verdict(u.actor, u.task, e)
                        else:
                            unreachable.remove(u)
                            kill(u.actor)
                            sup.lost(u.task, "its Ray actor stopped answering for a while")
                        continue
                    actor, task = running.pop(ref)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.ActorUnavailableError:
                        # Unreachable, not yet known dead: a call on it waits for Ray's verdict (which
                        # names a lost node), since killing it now would erase that.
                        self._cluster_gone(job)
                        n_actors -= 1
                        unreachable.append(_Unreachable(actor, task, time.monotonic() + PROBE_S, actor.ping.remote()))
                        continue
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                        n_actors -= 1
                        verdict(actor, task, e)
                        continue
                    except ray.exceptions.RayTaskError as e:  # the worker's own exception: stops the map
                        original = getattr(e, "cause", None)
                        raise (original if isinstance(original, BaseException) else e) from None
                    idle.append(actor)
                    sup.done(task)
                    yield value
                if time.monotonic() - self._checked > CLUSTER_CHECK_S:
                    self._cluster_gone(job)
                for ref, (actor, task) in list(running.items()):
                    if sup.hung(task):
                        del running[ref]
                        kill(actor)
                        n_actors -= 1
                        sup.died(task, hang_cause(job))
                now = time.monotonic()
                for u in list(unreachable):
                    if now > u.deadline:
                        # Item-caused deaths come as a quick verdict: this is the network or the node.
                        unreachable.remove(u)
                        kill(u.actor)
                        sup.lost(u.task, f"its Ray worker stayed unreachable for {PROBE_S:g} s")
                    elif u.ping is None and now > u.next_ping:
                        u.ping = u.actor.ping.remote()
        finally:
            for actor in idle + [a for a, _ in running.values()] + [u.actor for u in unreachable]:
                kill(actor)
            sup.cleanup()
