"""Alternated timing of two or more sides of a comparison.

Timing one side after the other lets whatever changes meanwhile (another
process's load, the CPU's clock, a cold cache) fall on one side only, so a
ratio can swing between runs.  Here the sides take turns rep by rep, forwards
then backwards (A B, B A, A B, …), after each has been warmed up, and a ratio
is the median of the per-rep ratios: each rep's samples were taken moments
apart, under the same conditions.  What a fresh process settles at start-up
can be averaged out by pooling several (``in_fresh_processes``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

Side = TypeVar("Side", bound=Hashable)


@dataclass(frozen=True)
class Summary:
    """Median and quartiles of a list of samples (seconds or ratios)."""

    median: float
    q1: float
    q3: float


def summary(samples: Sequence[float]) -> Summary:
    """Median and quartiles of ``samples`` (at least one)."""
    if len(samples) < 2:
        return Summary(samples[0], samples[0], samples[0])
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return Summary(median, q1, q3)


def take_turns(sides: Mapping[Side, Callable[[], float]], reps: int,
               warmup: int = 1) -> dict[Side, list[float]]:
    """What each side's calls return, ``reps`` calls each, the sides taking turns.

    Each side first runs ``warmup`` calls whose values are dropped (lazy
    imports, caches, thread pools); then rep r runs the sides in order when r
    is even, reversed when odd, so no side is always first or always right
    after the same neighbour.  For sides that time themselves (say, up to an
    event in the middle of the call); ``alternate`` times whole calls.
    """
    for run in sides.values():
        for _ in range(warmup):
            run()
    order = list(sides)
    values: dict[Side, list[float]] = {name: [] for name in order}
    for rep in range(reps):
        for name in order if rep % 2 == 0 else reversed(order):
            values[name].append(sides[name]())
    return values


def alternate(sides: Mapping[Side, Callable[[], object]], reps: int, warmup: int = 1,
              clock: Callable[[], float] = time.perf_counter) -> dict[Side, list[float]]:
    """Seconds per call of each side (by ``clock``), the sides taking turns as in
    ``take_turns``."""
    def timed(run: Callable[[], object]) -> Callable[[], float]:
        def call() -> float:
            started = clock()
            run()
            return clock() - started
        return call

    return take_turns({name: timed(run) for name, run in sides.items()}, reps, warmup)


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> Summary:
    """Summary of the per-rep ratios numerator[i] / denominator[i]."""
    return summary([n / d for n, d in zip(numerator, denominator, strict=True)])


def spread(stats: Summary, scale: float = 1000.0, digits: int = 2) -> str:
    """``median (q1–q3)`` of ``stats`` times ``scale`` (1000: seconds shown as ms)."""
    return (f"{stats.median * scale:.{digits}f} "
            f"({stats.q1 * scale:.{digits}f}–{stats.q3 * scale:.{digits}f})")


# Frame-sized buffers (up to 32 MiB, glibc's largest mmap threshold) come from the heap,
# and freed heap stays with the process: both sides of a comparison reuse warm pages.
KEPT_HEAP = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
             "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024 * 1024)}


def in_fresh_processes(script: str | Path, args: Sequence[str], count: int) -> list[Any]:
    """Run ``python script *args`` ``count`` times, one after another; their JSON results.

    Where the allocator and the address-space layout put a process's buffers is
    settled when it starts and shifts all its timings together (page faults
    per call, cache conflicts), so one process's medians can sit apart from the
    next one's; pooling several processes' samples averages that out.  glibc's
    heap is also kept rather than handed back to the system after each large
    free (``KEPT_HEAP``): otherwise every frame-sized temporary page-faults anew
    on some runs and not on others, which moved one side's time by a third
    between two runs.  Each run prints one JSON value on its last line of output.
    """
    results = []
    for _ in range(count):
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, env={**os.environ, **KEPT_HEAP})
        if done.returncode != 0:
            raise SystemExit(f"{script} {' '.join(args)} failed (exit {done.returncode}):\n"
                             f"{done.stderr[-4000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def threads_line() -> str:
    """The machine's CPUs and the thread counts of the libraries this process loaded."""
    parts = [f"{os.cpu_count()} CPUs"]
    if "torch" in sys.modules:
        parts.append(f"torch threads {sys.modules['torch'].get_num_threads()}")
    if "cv2" in sys.modules:
        parts.append(f"OpenCV threads {sys.modules['cv2'].getNumThreads()}")
    return ", ".join(parts)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
                threads: str | None = None) -> None:
    """A Markdown table under a line naming what was measured and the thread counts.

    ``threads`` replaces this process's thread counts where the timed work runs
    in other processes.
    """
    print(f"\n{title}; {threads or threads_line()}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
