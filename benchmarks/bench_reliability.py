"""Reliability under hostile input and kills: every input must end in a result or a
SettingsError, and every killed run must resume to the frames of an uninterrupted one.

Run ``python benchmarks/bench_reliability.py [--count N] [--kills K] [--seed S]``.
Each input section feeds seeded, randomly generated hostile input to one part
of the engine and sorts the outcomes: a valid result, a SettingsError naming
the setting, or anything else (a bug).  It also reports the slowest single
input and the growth of the process's peak memory, which must stay under
200 MB.  The kills section runs the real engine (tiny random model) K times,
SIGKILLs it at a seeded random moment, resumes it and counts frames lost
(missing or not decodable) and mismatched (not byte-identical).  The process
exits with status 1 when a section has a bug or breaks a bound.

The section ``cli_matrix`` runs the bad-input matrix of ``tests/engine/bad_inputs.py``
through the real CLI, one process per case, and counts what a user would see: exit
codes, error keys, tracebacks, stray files.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.errors import SettingsError  # noqa: E402
from engine.output import frame_path  # noqa: E402
from engine.expressions import _ARITY, FUNCTIONS  # noqa: E402
from engine.schedules import MAX_FRAME, PromptSchedule, ScheduleWarning, evaluate_schedule  # noqa: E402,E501
from tests.engine.bad_inputs import CASES, run_case  # noqa: E402
from engine.tiny_model import write_tiny_model  # noqa: E402
from tests.engine.kill_harness import (KILL_SETTINGS, Moment, events, frame_damage,  # noqa: E402
                                       kill_at, resume, run_engine, write_settings)

MAX_SECONDS = 1.0
MAX_GROWTH_MB = 200.0


@dataclass
class Row:
    """Outcomes of one section."""

    section: str
    inputs: int = 0
    valid: int = 0
    errors: int = 0
    bugs: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest_input: str = ""
    growth_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.bugs and self.slowest_s < MAX_SECONDS and self.growth_mb < MAX_GROWTH_MB


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_section(name: str, inputs: Iterator[object], check: Callable[[object], None],
                key: str) -> Row:
    """Feed ``inputs`` to ``check``, timing each; ``check`` asserts a valid result.

    Inputs are generated one at a time so that only the engine's memory grows.
    """
    row = Row(name)
    start_rss = peak_rss_mb()
    for item in inputs:
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ScheduleWarning)
                check(item)
            row.valid += 1
        except SettingsError as exc:
            if exc.key == key and str(exc).startswith(f"{key}:"):
                row.errors += 1
            else:
                row.bugs.append(f"SettingsError for {exc.key!r}: {str(exc)[:100]}")
        except Exception as exc:  # noqa: BLE001 - anything else is what we count as a bug
            row.bugs.append(f"{type(exc).__name__}: {str(exc)[:100]} for {str(item)[:80]!r}")
        elapsed = time.perf_counter() - started
        row.inputs += 1
        if elapsed > row.slowest_s:
            row.slowest_s, row.slowest_input = elapsed, str(item)[:60]
    row.growth_mb = peak_rss_mb() - start_rss
    return row


# ---------------------------------------------------------------- hostile text

UNICODE_DIGITS = "²³¹٠١٢٣٤٥٦٧٨٩０１２３४५"
NAMES = ("t", "max_f", "max_frames", "s", "pi", "e")
BAD_NAMES = ("x", "__import__", "t.real", "eval", "open", "lambda", "1j", "True", "'1'")
BINARY = ("+", "-", "*", "/", "//", "%", "**", "&", "|", "<", "<=", ">", ">=", "==", "!=",
          " and ", " or ")
BAD_BINARY = ("@", "<<", ",", " if ", "=")
UNARY = ("-", "+", "~", "not ")
RAW = "0123456789.:(),-+eE tmax_fsin*/\"' \n\t#\\[]{}" + UNICODE_DIGITS


class Hostile:
    """Seeded generator of schedule text: the grammar pushed to its edges, and noise."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def pick(self, good: tuple[str, ...], bad: tuple[str, ...]) -> str:
        """Mostly valid tokens, so that most inputs reach evaluation; now and then not."""
        return self.r.choice(bad if self.r.random() < 0.03 else good)

    def digits(self, most: int = 400) -> str:
        n = self.r.choice((1, 2, 3, 9, 10, 17, 309, most))
        return "".join(self.r.choice("0123456789") for _ in range(self.r.randint(1, n)))

    def number(self) -> str:
        r = self.r
        return r.choice((
            lambda: repr(r.uniform(-1e3, 1e3)),
            lambda: str(r.randint(0, 100)),
            lambda: f"{r.choice(('', '-'))}1e{r.randint(-330, 330)}",
            lambda: self.digits(),
            lambda: f"{self.digits(20)}.{self.digits(20)}e{r.choice('+-')}{r.randint(0, 999)}",
            lambda: r.choice(("1e309", "-1e309", "1e-400", ".5", "5.", "0x" + "f" * 300,
                              "0/0", "1/0", "9**9**9**9", "1_000")),
        ))()

    def expression(self, depth: int = 0) -> str:
        r = self.r
        if depth > 4 or r.random() < 0.3:
            return self.number() if r.random() < 0.5 else self.pick(NAMES, BAD_NAMES)
        kind = r.random()
        if kind < 0.35:
            op = self.pick(BINARY, BAD_BINARY)
            return f"({self.expression(depth + 1)}{op}{self.expression(depth + 1)})"
        if kind < 0.45:
            return f"{r.choice(UNARY)}({self.expression(depth + 1)})"
        if kind < 0.55:
            parts = [self.expression(depth + 1) for _ in range(3)]
            return f"({parts[0]} if {parts[1]} else {parts[2]})"
        name = self.pick(tuple(sorted(FUNCTIONS)), BAD_NAMES)
        low, high = _ARITY.get(name, (1, 1))
        count = r.randint(low, min(high, 4)) if r.random() < 0.95 else r.choice((low - 1, high + 1))
        return f"{name}({', '.join(self.expression(depth + 1) for _ in range(count))})"

    def frame(self) -> str:
        r = self.r
        if r.random() < 0.7:
            return str(r.randint(0, 1000))
        return r.choice((
            lambda: str(r.randint(0, 2 * MAX_FRAME)),
            lambda: self.digits(5000),
            lambda: repr(r.uniform(-5, 1e4)),
            lambda: r.choice(("max_f", "max_f-2", '"max_f-2"', "'max_f/2'", "max_frames", "s",
                              "t", "-1", "-0", "+3", " 7 ", "1e9", "1e10")),
            lambda: "".join(r.choice(UNICODE_DIGITS) for _ in range(r.randint(1, 3))),
            lambda: self.expression(2),
        ))()

    def key(self) -> str:
        form = self.r.choice(("{}:({})", "{} : ( {} )", "{}:{}", "{}:(({}))"))
        return form.format(self.frame(), self.expression())

    def raw(self) -> str:
        size = self.r.choice((5, 30, 300, 3000))
        return "".join(self.r.choice(RAW) for _ in range(self.r.randint(0, size)))

    def large(self) -> str:
        """One of the inputs that used to take seconds: long runs, many keys, deep nesting."""
        r = self.r
        n = r.choice((1_000, 16_000, 100_000, 400_000))
        return r.choice((
            lambda: "0:(" + "1" * n + "x)",
            lambda: "0:(" + "1" * n + ")",
            lambda: "0:(" + "(" * n + "1" + ")" * n + ")",
            lambda: ", ".join(f"{i}:({r.random():.4f})" for i in range(n // 4)),
            lambda: ", ".join(f"{i}:(sin(t)+{i})" for i in range(n // 16)),
            lambda: ", ".join(f"max_f:({i})" for i in range(n // 10)),
            lambda: "0:(" + "+".join(["sin(t*1.1)"] * 60) + ")",
        ))()

    def plausible(self) -> str:
        """A schedule someone might write: small numbers, t, the usual functions."""
        r = self.r
        frames = sorted(r.sample(range(0, 2000), r.randint(1, 6)))
        values = (lambda: f"{r.uniform(-10, 10):.3f}",
                  lambda: f"{r.uniform(0, 2):.2f}*sin({r.uniform(0, 1):.3f}*t)+1",
                  lambda: f"where(t>{r.randint(0, 100)}, {r.uniform(-2, 2):.2f}, max(t/100, 0.5))",
                  lambda: f"round(abs(cos(t/{r.randint(1, 60)})), {r.randint(-1, 4)})",
                  lambda: f"{r.uniform(0, 1):.2f}**(t/max_f+1)")
        return ", ".join(f"{f}:({r.choice(values)()})" for f in frames)

    def schedule(self) -> str:
        r = self.r.random()
        if r < 0.02:
            return self.large()
        if r < 0.1:
            return self.raw()
        if r < 0.3:
            return self.plausible()
        return ", ".join(self.key() for _ in range(self.r.randint(1, 6)))

    def frames(self) -> int:
        return self.r.choice((1, 1, 2, 10, 100, 1000, 1000, 10_000, 100_000, 1_000_000))

    def prompt_key(self) -> object:
        r = self.r.random()
        if r < 0.1:
            return self.r.choice((-1, 0, 7, MAX_FRAME, MAX_FRAME + 1, 10**400, True))
        if r < 0.3:
            return self.raw()
        return self.frame()


# ---------------------------------------------------------------- sections

def schedule_section(count: int, seed: int) -> Row:
    """Hostile schedule strings through ``evaluate_schedule``."""
    hostile = Hostile(seed)
    inputs = ((hostile.schedule(), hostile.frames()) for _ in range(count))

    def check(item: object) -> None:
        text, frames = item  # type: ignore[misc]
        values = evaluate_schedule(text, frames, key="zoom")
        if not (isinstance(values, np.ndarray) and values.dtype == np.float64
                and values.shape == (frames,) and np.isfinite(values).all()):
            raise AssertionError(f"not {frames} finite float64 values")

    return run_section("schedules", inputs, check, "zoom")


def prompt_section(count: int, seed: int) -> Row:
    """Hostile prompt keys through ``PromptSchedule`` (one to four keys per input)."""
    hostile = Hostile(seed + 1)

    def inputs() -> Iterator[object]:
        for _ in range(count):
            keys = [hostile.prompt_key() for _ in range(hostile.r.randint(1, 4))]
            yield {k: f"prompt {i}" for i, k in enumerate(keys)}, hostile.frames()

    def check(item: object) -> None:
        prompts, frames = item  # type: ignore[misc]
        schedule = PromptSchedule(prompts, max_frames=frames)
        if not all(isinstance(f, int) and 0 <= f <= MAX_FRAME for f in schedule.keys):
            raise AssertionError(f"key frames {schedule.keys[:5]}")
        for f in (0, frames - 1):
            positive, negative = schedule.at(f)
            if not (isinstance(positive, str) and isinstance(negative, str)):
                raise AssertionError("prompts are not text")

    return run_section("prompt keys", inputs(), check, "animation_prompts")


SECTIONS: tuple[Callable[[int, int], Row], ...] = (schedule_section, prompt_section)


def cli_matrix() -> bool:
    """Every bad-input case through ``python -m engine``; True when each one is refused
    cleanly (its exit code, an error naming its setting, no traceback, nothing left)."""
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, case in enumerate(CASES):
            folder = Path(scratch) / str(index)
            folder.mkdir()
            started = time.perf_counter()
            outcome = run_case(case, folder)
            results.append((case, outcome, time.perf_counter() - started))
    as_expected = sum(outcome.code == case.code for case, outcome, _ in results)
    named = sum(outcome.error is not None and outcome.error.get("key") == case.key
                and case.key in outcome.error.get("message", "") for case, outcome, _ in results)
    print(f"\n{'cli matrix':<14}{'cases':>8}{'exit as expected':>18}{'error names key':>17}"
          f"{'tracebacks':>12}{'stray files':>13}{'slowest s':>11}")
    print(f"{'':<14}{len(results):>8}{as_expected:>18}{named:>17}"
          f"{sum(o.traceback for _, o, _ in results):>12}"
          f"{sum(len(o.stray) for _, o, _ in results):>13}"
          f"{max(seconds for *_, seconds in results):>11.2f}")
    problems = [(case.name, p) for case, outcome, _ in results for p in outcome.problems(case)]
    for name, problem in problems:
        print(f"  BUG {name}: {problem[:150]}")
    return not problems


# ---------------------------------------------------------------- kills

@dataclass
class KillRow:
    """Outcomes of the kill-and-resume cycles."""

    cycles: int = 0
    killed: int = 0        # the engine was still running when the kill came
    survived: int = 0      # killed, resumed with exit 0, every frame byte-identical
    lost: int = 0          # frames missing or not decodable after the resume
    mismatched: int = 0    # frames that decode but differ from the uninterrupted run
    moments: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.survived == self.killed


def kills(count: int, seed: int) -> KillRow:
    """``count`` runs of the engine, each SIGKILLed at a seeded random moment and resumed.

    A moment is, one time in four, halfway through writing a random frame (the
    engine's test-only pause), else after a random number of frames plus up
    to half a second, which lands in diffusion, warping or a write.
    """
    r = random.Random(seed)
    frames = KILL_SETTINGS["max_frames"]
    row = KillRow()
    if not count:
        return row
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_tiny_model(root / "model", single_file=True)
        reference = _reference_frames(root / "reference", root / "model")
        for cycle in range(count):
            moment = Moment(in_write=r.randint(1, frames - 1)) if r.random() < 0.25 else \
                Moment(frames=r.randint(1, frames - 1), delay=r.uniform(0.0, 0.5))
            _kill_cycle(row, moment, root / f"cycle{cycle}", root / "model", reference)
    return row


def _reference_frames(folder: Path, model: Path) -> list[bytes]:
    """The frames of one uninterrupted run, as bytes."""
    folder.mkdir()
    result = run_engine(write_settings(folder / "s.txt", batch_name="run"), folder / "out", model)
    if result.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed: {result.stderr}")
    ts = next(e for e in events(result) if e["event"] == "start")["timestring"]
    return [frame_path(folder / "out" / "run", ts, i).read_bytes()
            for i in range(KILL_SETTINGS["max_frames"])]


def _kill_cycle(row: KillRow, moment: Moment, folder: Path, model: Path,
                reference: list[bytes]) -> None:
    """Kill one fresh run at ``moment``, resume it, and count what the resume left wrong."""
    folder.mkdir()
    settings = write_settings(folder / "s.txt", batch_name="run")
    row.cycles += 1
    row.moments.append(str(moment))
    try:
        ts, killed = kill_at(moment, settings, folder / "out", model)
        result = resume(settings, folder / "out", model, ts)
    except (AssertionError, subprocess.SubprocessError) as exc:
        row.failures.append(f"{moment}: {str(exc)[-300:]}")
        return
    lost, mismatched = frame_damage(folder / "out" / "run", ts, reference)
    row.killed += killed
    row.lost, row.mismatched = row.lost + lost, row.mismatched + mismatched
    if result.returncode != 0:
        row.failures.append(f"{moment}: resume exited {result.returncode}: "
                            f"{result.stderr.strip()[-300:]}")
    elif killed and not lost and not mismatched:
        row.survived += 1


def print_kills(row: KillRow) -> None:
    print(f"{'kills':<14}{'cycles':>8}{'killed':>8}{'survived':>10}{'frames lost':>13}"
          f"{'mismatched':>12}")
    print(f"{'':<14}{row.cycles:>8}{row.killed:>8}{row.survived:>10}{row.lost:>13}"
          f"{row.mismatched:>12}")
    print(f"kills: moments {', '.join(row.moments)}")
    for failure in row.failures[:5]:
        print(f"  FAILED {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="inputs per section")
    parser.add_argument("--kills", type=int, default=8,
                        help="kill-and-resume cycles of the real engine (0: none)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = []
    header = (f"{'section':<14}{'inputs':>8}{'valid':>8}{'SettingsError':>15}{'bug':>6}"
              f"{'slowest ms':>12}{'peak growth MB':>16}")
    print(header)
    for section in SECTIONS:
        row = section(args.count, args.seed)
        rows.append(row)
        print(f"{row.section:<14}{row.inputs:>8}{row.valid:>8}{row.errors:>15}"
              f"{len(row.bugs):>6}{1000 * row.slowest_s:>12.1f}{row.growth_mb:>16.1f}")
    for row in rows:
        print(f"{row.section}: slowest input {row.slowest_input!r}")
        for bug in row.bugs[:5]:
            print(f"  BUG {bug}")
    matrix = cli_matrix()
    killing = kills(args.kills, args.seed)
    print_kills(killing)
    ok = matrix and all(row.ok for row in rows) and killing.ok
    print("PASS" if ok else f"FAIL: bugs, a single input over {MAX_SECONDS} s, "
          f"memory growth over {MAX_GROWTH_MB} MB, or a kill not survived")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
