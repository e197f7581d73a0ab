"""CPU threads on a shared machine: the engine takes the cores others leave idle."""

import os
import subprocess
import sys
import time

import pytest

from engine import threads
from engine.cli import main
from engine.client.job import ENGINE_NICENESS, engine_command, start_engine

BUSY = "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass"


def test_a_requested_count_wins_then_omp_num_threads_then_the_idle_cores(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose_threads(5) == 5
    assert threads.choose_threads() == 3
    assert threads.choose_threads(100_000) == 8  # more would only wait, or crash
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")
    assert threads.choose_threads() == 8
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "idle_cores", lambda: 2.6)
    assert threads.choose_threads() == 3
    monkeypatch.setattr(threads, "idle_cores", lambda: 0.0)
    assert threads.choose_threads() == 1  # a fully busy machine still gets one thread
    monkeypatch.setattr(threads, "idle_cores", lambda: 30.0)
    assert threads.choose_threads() == 8  # never more than this process may use


def test_usable_cores_follow_the_process_affinity():
    assert 1 <= threads.usable_cores() <= len(os.sched_getaffinity(0))


def test_two_busy_processes_leave_the_engine_fewer_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        time.sleep(0.5)
        chosen = threads.choose_threads()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    assert chosen <= max(1, threads.usable_cores() - 1)


def test_threads_on_the_command_line(tmp_path, capsys):
    settings = tmp_path / "s.json"
    settings.write_text('{"W": 64, "H": 64, "animation_mode": "2D", "max_frames": 2}')
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["--settings", str(settings), "--outdir", str(out), "--threads", "0"])
    assert exc.value.code == 2
    assert "threads: '0'" in capsys.readouterr().err and not out.exists()
    assert main(["--settings", str(settings), "--outdir", str(out), "--preview",
                 "--enable_animation_mode",
                 "--threads", "1"]) == 0
    assert "1 CPU thread\n" in capsys.readouterr().err
    cores = threads.usable_cores()
    assert main(["--settings", str(settings), "--outdir", str(out), "--preview",
                 "--enable_animation_mode", "--threads", "100000"]) == 0
    err = capsys.readouterr().err
    assert f"threads 100000: more than the {cores} CPU core" in err
    assert f"{cores} CPU thread" in err
    assert engine_command("py", "s", "o", threads=3)[-2:] == ["--threads", "3"]
    assert "--threads" not in engine_command("py", "s", "o")


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_the_engine_runs_below_blenders_priority():
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    proc = start_engine([sys.executable, "-c", "import os, time; time.sleep(0.5); "
                         "print(os.getpriority(os.PRIO_PROCESS, 0))"],
                        stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert int(out) == min(mine + ENGINE_NICENESS, 19)
