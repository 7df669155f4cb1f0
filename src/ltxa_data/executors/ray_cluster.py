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
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import SystemicError
from ..recipe import RayConfig
from .base import WorkerFactory
from .jobs import Job
from .supervise import Supervisor, Task, WorkerRuntime, fault_cause, hang_cause

POLL_S = 0.5


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
            ray.init(**kwargs)
            self._owns_cluster = True
        else:
            self._owns_cluster = False

    def gpu_count(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def shutdown(self) -> None:
        if self._owns_cluster and self.ray.is_initialized():
            self.ray.shutdown()

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
        n_actors = 0

        def kill(actor: Any) -> None:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)

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
                if not running:
                    return
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    actor, task = running.pop(ref)
                    try:
                        value = ray.get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                        kill(actor)
                        n_actors -= 1
                        # Ray's error names no signal: the worker's fault handler does.
                        sup.died(task, fault_cause(job.watch_dir, sup.watch_state(task)) if job.watch_dir
                                 else f"worker died ({str(e).splitlines()[0][:200]})")
                        continue
                    except ray.exceptions.RayTaskError as e:  # the worker's own exception: stops the map
                        original = getattr(e, "cause", None)
                        raise (original if isinstance(original, BaseException) else e) from None
                    idle.append(actor)
                    sup.done(task)
                    yield value
                for ref, (actor, task) in list(running.items()):
                    if sup.hung(task):
                        del running[ref]
                        kill(actor)
                        n_actors -= 1
                        sup.died(task, hang_cause(job))
        finally:
            for actor in idle + [a for a, _ in running.values()]:
                kill(actor)
            sup.cleanup()
