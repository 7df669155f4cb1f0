"""Run a Python command line in a network namespace that has only loopback, so that a test can prove it
sends nothing off the machine (Ray, for one, asks cloud-metadata addresses about itself when it starts).

    from .netns import needs_netns, run_offline

    @needs_netns
    def test_x(tmp_path):
        done = run_offline(["-c", "print('hi')"], timeout=60)
        assert done.stdout == "hi\\n"

Needs root (or CAP_SYS_ADMIN), `unshare` (util-linux) and `ip` (iproute2). Inside, `lo` is up and there is
no other interface: a connection to anything but 127.0.0.1/::1 fails at once with ENETUNREACH (no waiting
on a timeout), and DNS fails the same way. Files, environment and processes are the caller's as usual.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

__all__ = ["OfflineRunError", "needs_netns", "netns_available", "netns_command", "netns_unavailable_reason",
           "run_offline"]

_UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
_IP = shutil.which("ip") or "/usr/sbin/ip"
# `unshare -n` without --fork execs its program, so the pid that subprocess sees is the command's own.
_WRAPPER = f'{shlex.quote(_IP)} link set lo up && exec "$@"'


def netns_command(argv: Sequence[str]) -> list[str]:
    """`argv` (a full command line: program first) wrapped to run in a fresh loopback-only namespace."""
    return [_UNSHARE, "--net", "--", "sh", "-c", _WRAPPER, "sh", *argv]


@functools.cache
def netns_unavailable_reason() -> str | None:
    """None when `run_offline` works here, else why not (for a skip message)."""
    for tool in (_UNSHARE, _IP):
        if not Path(tool).is_file():
            return f"{tool} not found (util-linux / iproute2)"
    try:
        done = subprocess.run(netns_command(["true"]), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot start `unshare --net`: {exc}"
    if done.returncode != 0:
        return f"`unshare --net` failed (needs root / CAP_SYS_ADMIN): {done.stderr.strip()[-300:]}"
    return None


def netns_available() -> bool:
    return netns_unavailable_reason() is None


needs_netns = pytest.mark.skipif(not netns_available(), reason=f"no network namespace: {netns_unavailable_reason()}")


class OfflineRunError(subprocess.SubprocessError):
    """`run_offline`'s command exited non-zero (returncode) or ran past its timeout (timed_out, returncode None).
    str() names the command and ends with the tails of its stdout and stderr."""

    def __init__(self, cmd: list[str], returncode: int | None, stdout: str, stderr: str, timeout: float | None = None):
        super().__init__(cmd, returncode)
        self.cmd, self.returncode, self.stdout, self.stderr, self.timeout = cmd, returncode, stdout, stderr, timeout

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def __str__(self) -> str:
        what = (f"ran past its {self.timeout:g} s timeout" if self.timed_out
                else f"exited with {_describe_returncode(self.returncode)}")
        return f"offline run {what}: {shlex.join(self.cmd)}\n{_tails(self.stdout, self.stderr)}"


def run_offline(args: Sequence[str | os.PathLike[str]], *, timeout: float, env: Mapping[str, str | None] | None = None,
                cwd: str | os.PathLike[str] | None = None, python: str | os.PathLike[str] = sys.executable,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python *args` (a script and its arguments, ["-c", code] or ["-m", module, ...]) with only loopback.

    `env` entries are set on top of os.environ (a value of None removes the variable). stdout and stderr are
    captured as text. A non-zero exit raises OfflineRunError (unless check=False); so does a timeout, after
    SIGKILL to the whole process group (Ray's gcs_server and raylet share the driver's group; its workers,
    in their own sessions, exit by themselves within seconds once the raylet is gone).
    """
    argv = [os.fspath(python), *map(os.fspath, args)]
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    proc = subprocess.Popen(netns_command(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a process outside the group still holds the pipes open
            proc.kill()
            stdout, stderr = "", "(output lost: the pipes stayed open after the process group was killed)"
        raise OfflineRunError(argv, None, stdout, stderr, timeout) from None
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    done = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    if check and done.returncode != 0:
        raise OfflineRunError(argv, done.returncode, stdout, stderr)
    return done


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _describe_returncode(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _tails(stdout: str | None, stderr: str | None, limit: int = 4000) -> str:
    parts = []
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        text = (text or "").rstrip()
        if text:
            parts.append(f"--- {name} (last {min(len(text), limit)} of {len(text)} chars)\n{text[-limit:]}")
    return "\n".join(parts) or "(no output)"
