"""Starting, or reaching, the Ray cluster of a build within a bounded time, and telling whether it is still
there: Ray itself may wait many minutes, silently, for a GCS that never answers."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import SystemicError
from ..recipe import RayConfig

log = logging.getLogger(__name__)

GIVE_UP_S = 10.0
"""After stopping a cluster that did not start in time, how long `ray.init` may take to return."""


def reachable(address: str, timeout: float) -> str | None:
    """None when a TCP connection to `host:port` opens within `timeout`, else why not."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except (OSError, ValueError) as e:
        return str(e) or type(e).__name__


def check_local_address(ip: str) -> None:
    """Refuse a local cluster on an address this machine cannot listen and connect on: Ray itself then
    waits for its own GCS for many minutes, silently (measured with loopback down)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as server:
            server.bind((ip, 0))
            server.listen(1)
            why = reachable(f"{ip}:{server.getsockname()[1]}", 5.0)
    except OSError as e:
        why = str(e)
    if why:
        raise SystemicError(f"executor.kind ray: cannot start a local Ray cluster on {ip}: this machine cannot "
                            f"listen and connect there ({why}). Check that the address is this machine's and "
                            "its interface is up (`ip addr`; `lo` for 127.0.0.1), or set "
                            "executor.ray.node_ip_address")


def _descendants(pid: int) -> list[int]:
    """Processes under `pid` (Linux /proc; none found elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            child, rest = stat.read_text().split(" ", 1)
            children.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(child))
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def start(ray: Any, cfg: RayConfig, kwargs: dict[str, Any]) -> None:
    """`ray.init`, bounded: the processes it started are stopped after `start_timeout_s`, which makes Ray
    give up (or, stuck in native code, the driver ends); an address is first checked to take connections."""
    if not cfg.address:
        what, failed = "a local Ray cluster", "did not start"
        check_local_address(cfg.node_ip_address or ray.util.get_node_ip_address())
    else:
        what, failed = f"the Ray cluster at {cfg.address}", "could not be joined"
        if ":" in cfg.address and not cfg.address.startswith("ray://"):
            why = reachable(cfg.address, min(cfg.start_timeout_s, 30.0))
            if why:
                raise SystemicError(f"executor.ray.address: cannot reach {cfg.address} ({why}): check that the "
                                    "cluster is up (`ray status` on its head node) and that this machine "
                                    "reaches it")
    late, finished = threading.Event(), threading.Event()
    message = (f"executor.kind ray: {what} {failed} within {cfg.start_timeout_s:g} s (executor.ray.start_timeout_s). "
               "Check that this machine reaches the node address (`ip addr`), that /tmp has free space, and Ray's "
               "logs in /tmp/ray/session_latest/logs")

    before = set(_descendants(os.getpid()))

    def give_up() -> None:
        late.set()
        log.error("%s has not started after %g s: stopping it", what, cfg.start_timeout_s)
        for pid in set(_descendants(os.getpid())) - before:  # what ray.init started, nothing else
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if not finished.wait(GIVE_UP_S):
            # ray.init is stuck in native code, and Ray ends this process itself a minute after its GCS
            # went: end it now, with the reason (nothing has started, so nothing is lost).
            print(f"error: {message}", file=sys.stderr, flush=True)
            os._exit(1)

    timer = threading.Timer(cfg.start_timeout_s, give_up)
    timer.daemon = True
    timer.start()
    try:
        ray.init(**kwargs)
    except Exception as e:
        if not late.is_set():
            raise SystemicError(f"executor.kind ray: {what} {failed}: {str(e).strip()[:500]}") from e
    finally:
        finished.set()
        timer.cancel()
    if late.is_set():
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise SystemicError(message)
