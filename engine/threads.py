"""How many CPU threads the engine's torch and OpenCV use, chosen for a shared machine.

torch's CPU kernels run in OpenMP teams: every parallel step waits at a barrier
for its slowest thread.  When other processes (Blender, Cycles scene passes, a
second render) hold some of the cores, one thread of the team is always waiting
for a core and the whole step waits with it — a run with two threads on a busy
two-core machine took many times longer than with one.  So the default is the
cores this process may use (its CPU affinity, capped by a container's CPU
quota) that the rest of the machine leaves idle (over a tenth of a second, and
by the one-minute load average), at least one.  ``--threads N``, the add-on's
*Engine CPU Threads* preference or ``OMP_NUM_THREADS`` fix the count instead.
Waiting OpenMP threads sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``), so
an idle team gives its cores back to Blender's UI; OpenMP reads that variable
when torch loads, so ``quiet_openmp`` runs first.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import suppress
from pathlib import Path

WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def quiet_openmp() -> None:
    """Make OpenMP threads sleep while they wait (unless the user chose a policy);
    call it before torch is imported."""
    os.environ.setdefault(*WAIT_POLICY)


def usable_cores() -> int:
    """The cores this process may run on: its affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, quota) if quota else cores)


def _cgroup_quota() -> int | None:
    """Whole cores granted by a cgroup v2 ``cpu.max`` quota, rounded up; None if none."""
    try:
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if limit == "max" else max(1, math.ceil(int(limit) / int(period)))
    except (OSError, ValueError):
        return None


def idle_cores(sample: float = 0.1) -> float:
    """Cores the rest of the machine leaves idle: the smaller of what ``/proc/stat``
    shows idle over ``sample`` seconds (now) and the cores minus the one-minute load
    average (lately), so that neither a burst nor a lull just before the run decides
    alone.  Where neither can be read, every core counts as idle."""
    cores = os.cpu_count() or 1
    estimates = [float(cores)]
    try:
        estimates.append(cores - os.getloadavg()[0])
    except (AttributeError, OSError):
        pass
    first = _cpu_times()
    if first is not None:
        time.sleep(sample)
        second = _cpu_times()
        if second is not None and second[0] > first[0]:
            estimates.append(cores * (second[1] - first[1]) / (second[0] - first[0]))
    return max(0.0, min(estimates))


def _cpu_times() -> tuple[int, int] | None:
    """(all, idle) jiffies of the machine from ``/proc/stat``; None where there is none."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[3] + fields[4]  # idle + iowait; guest time is in user


def asked_threads(requested: int | None = None) -> int | None:
    """The count the user fixed: ``requested`` when given, else ``OMP_NUM_THREADS`` when
    set to a whole number of at least 1; None when the engine is to choose."""
    if requested:
        return requested
    with suppress(ValueError):
        if int(os.environ.get("OMP_NUM_THREADS", "")) > 0:
            return int(os.environ["OMP_NUM_THREADS"])
    return None


def choose_threads(requested: int | None = None) -> int:
    """The count the user fixed (``asked_threads``), else the usable cores that the
    machine leaves idle; never more than the usable cores.  Threads beyond the cores
    only wait for one another, and some thousands of them exhaust the process
    (OpenMP fails to start them, or the process crashes)."""
    asked = asked_threads(requested)
    if asked:
        return min(asked, usable_cores())
    return max(1, min(usable_cores(), int(idle_cores() + 0.5)))


def use_threads(count: int) -> int:
    """Give torch and OpenCV ``count`` threads each; returns ``count``."""
    import cv2
    import torch
    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    return count
