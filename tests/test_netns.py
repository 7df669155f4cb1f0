"""The loopback-only namespace that offline tests run in (tests/netns.py) really is offline."""

from __future__ import annotations

import time

from .netns import needs_netns, run_offline

pytestmark = needs_netns


def test_only_loopback_exists() -> None:
    done = run_offline(["-c", "import subprocess; print(subprocess.run(['ip', '-o', 'link'], check=True, "
                              "capture_output=True, text=True).stdout, end='')"], timeout=60)
    names = [line.split(":")[1].strip() for line in done.stdout.splitlines()]
    assert names == ["lo"], done.stdout
    assert "UP" in done.stdout.split("<")[1].split(">")[0], done.stdout


def test_outside_connect_fails_at_once() -> None:
    code = """
import errno, socket, time
start = time.monotonic()
try:
    socket.create_connection(("1.1.1.1", 80), timeout=20).close()
except OSError as exc:
    print(errno.errorcode.get(exc.errno, exc.errno), f"{time.monotonic() - start:.3f}")
else:
    print("CONNECTED")
"""
    started = time.monotonic()
    done = run_offline(["-c", code], timeout=60)
    name, seconds = done.stdout.split()
    assert name == "ENETUNREACH", done.stdout
    assert float(seconds) < 1.0
    assert time.monotonic() - started < 30

