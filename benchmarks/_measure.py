"""Running one child process (or a herd of them) and measuring its wall and CPU time.

On Linux a run also says how much CPU time everything else on the machine used
meanwhile (``/proc/stat``): on a shared machine, a run during which another
process was busy is not a fair sample.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["HerdResult", "RunResult", "machine_busy_ns", "run_herd", "run_once"]

_HAS_WAIT4 = hasattr(os, "wait4")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class RunResult:
    """One child: wall time around spawn-to-exit, its own CPU time (user + system)."""

    wall_ns: int
    cpu_ns: int | None  # None where the platform cannot say
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    # CPU time the rest of the machine (this process included) used during the run;
    # None where the platform cannot say. Resolution: a clock tick, usually 10 ms.
    others_cpu_ns: int | None = None


@dataclass(frozen=True)
class HerdResult:
    wall_ns: int
    results: list[RunResult]


def machine_busy_ns() -> int | None:
    """CPU time every CPU of the machine spent busy since boot (Linux), or None."""
    try:
        with _PROC_STAT.open(encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    # Steal is time the hypervisor gave to another machine: a disturbance all the same.
    return (user + nice + system + irq + softirq + steal) * 1_000_000_000 // _CLOCK_TICKS


def _children_cpu_ns() -> int | None:
    if sys.platform == "win32":
        return None
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


class _Child:
    """A started child whose output goes to temporary files (no pipe can fill up)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> None:
        # Closed by output(), once the child is reaped.
        self._out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.started_ns = time.perf_counter_ns()
        self.proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
        )
        self.timed_out = False
        self._timer = threading.Timer(timeout, self._kill)
        self._timer.daemon = True
        self._timer.start()

    def _kill(self) -> None:
        self.timed_out = True
        self.proc.kill()

    def wait(self) -> tuple[int, int | None, int]:
        """Reap the child: (exit code, CPU ns or None, perf_counter_ns at reaping)."""
        if _HAS_WAIT4:
            _, status, usage = os.wait4(self.proc.pid, 0)
            ended = time.perf_counter_ns()
            code = os.waitstatus_to_exitcode(status)
            self.proc.returncode = code  # so Popen does not try to reap it again
            cpu: int | None = int((usage.ru_utime + usage.ru_stime) * 1e9)
        else:
            code = self.proc.wait()
            ended = time.perf_counter_ns()
            cpu = None
        self._timer.cancel()
        return code, cpu, ended

    def output(self) -> tuple[bytes, bytes]:
        data: list[bytes] = []
        for handle in (self._out, self._err):
            handle.seek(0)
            data.append(handle.read())
            handle.close()
        return data[0], data[1]


def run_once(argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 120.0) -> RunResult:
    """Spawn ``argv`` and wait for it; the wall time covers spawn to exit."""
    before = None if _HAS_WAIT4 else _children_cpu_ns()
    busy_before = machine_busy_ns()
    child = _Child(argv, env, timeout)
    code, cpu, ended = child.wait()
    busy_after = machine_busy_ns()
    if cpu is None and before is not None:
        after = _children_cpu_ns()
        cpu = None if after is None else after - before
    others = None
    if busy_before is not None and busy_after is not None and cpu is not None:
        others = max(0, busy_after - busy_before - cpu)
    stdout, stderr = child.output()
    return RunResult(ended - child.started_ns, cpu, code, stdout, stderr, child.timed_out, others)


def run_herd(
    argv: Sequence[str], env: Mapping[str, str], count: int, *, timeout: float = 300.0
) -> HerdResult:
    """Start ``count`` copies of ``argv`` back to back, then wait for all of them.

    The herd's wall time runs from the first spawn to the last exit.
    """
    children: list[_Child] = []
    try:
        for _ in range(count):
            children.append(_Child(argv, env, timeout))
    finally:
        # Whatever happened, reap what was started.
        waited = [child.wait() for child in children]
    first = children[0].started_ns if children else time.perf_counter_ns()
    last = max((ended for _, _, ended in waited), default=first)
    results = []
    for child, (code, cpu, ended) in zip(children, waited, strict=True):
        stdout, stderr = child.output()
        results.append(
            RunResult(ended - child.started_ns, cpu, code, stdout, stderr, child.timed_out)
        )
    return HerdResult(last - first, results)
