"""Job scratch in <output>/jobs/: what counts as scratch, Clean Up, and disk use (no bpy)."""

from __future__ import annotations

import time

import pytest

from tests.addon.pure import addon_module

tidy = addon_module("addon.tidy")

STEM = "Shot_20260101120000"


def a_run(jobs, stem=STEM, depth_bytes=1000):
    """A run's job file, log and every kind of scratch."""
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / f"{stem}.json").write_text("{}")
    (jobs / f"{stem}.log").write_text("log")
    for name in ("_depth", "_scene", "_masks"):
        (jobs / f"{stem}{name}").mkdir()
    (jobs / f"{stem}_depth" / "00000.npy").write_bytes(b"x" * depth_bytes)
    (jobs / f"{stem}_scene" / "00000.png").write_bytes(b"p")
    (jobs / f"{stem}.cancel").touch()


def test_remove_scratch_keeps_the_job_file_and_log(tmp_path):
    jobs = tmp_path / "jobs"
    a_run(jobs)
    a_run(jobs, "Shot_20260101120000_2")
    assert tidy.remove_scratch(jobs, STEM) == 1001
    assert sorted(p.name for p in jobs.iterdir() if p.name.startswith(STEM + ".") or
                  p.name.startswith(STEM + "_d")) == [f"{STEM}.json", f"{STEM}.log"]
    assert (jobs / "Shot_20260101120000_2_depth" / "00000.npy").is_file()  # another run's


def test_clean_up_removes_only_scratch_no_take_uses(tmp_path):
    out = tmp_path / "out"
    jobs = out / "jobs"
    used, unused = STEM, "Alt_20260101120001"
    a_run(jobs, used)
    a_run(jobs, unused)
    (out / "Shot").mkdir()
    (out / "Shot" / "20260101120000_00000.png").write_bytes(b"frame")
    (jobs / "notes_depth").mkdir()  # not a run's name: not ours to delete
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (jobs / "Old_20250101000000_depth").symlink_to(outside, target_is_directory=True)
    removed, freed = tidy.clean_up(jobs, {str(jobs / f"{used}.json")})
    assert removed == 5 and freed >= 1001
    names = {p.name for p in jobs.iterdir()}
    assert {f"{used}_depth", f"{used}_scene", f"{used}_masks", f"{used}.cancel",
            f"{unused}.json", f"{unused}.log", "notes_depth"} <= names
    assert not {f"{unused}_depth", f"{unused}_scene", f"{unused}_masks"} & names
    assert outside.is_dir()  # a link is removed, never what it points to
    assert (out / "Shot" / "20260101120000_00000.png").is_file()


def test_clean_up_of_a_missing_folder_does_nothing(tmp_path):
    assert tidy.clean_up(tmp_path / "nothing", set()) == (0, 0)


def test_nothing_outside_jobs_is_removed(tmp_path):
    (tmp_path / f"{STEM}_depth").mkdir()
    with pytest.raises(ValueError, match="not run scratch"):
        tidy._remove(tmp_path / f"{STEM}_depth", tmp_path / "jobs")


def test_disk_use_is_measured_off_the_caller_and_remeasured_when_forgotten(tmp_path):
    out = tmp_path / "out"
    a_run(out / "jobs", depth_bytes=4096)
    (out / "frame.png").write_bytes(b"y" * 100)
    use = tidy.DiskUse()
    first = use.get(out)
    deadline = time.monotonic() + 10
    while first is None and time.monotonic() < deadline:
        time.sleep(0.01)
        first = use.get(out)
    total, jobs = first
    assert jobs == 4096 + 1 + 2 + 3 and total == jobs + 100
    (out / "more.png").write_bytes(b"z" * 50)
    assert use.get(out) == first  # cached
    use.forget()
    again = None
    while again is None and time.monotonic() < deadline:
        time.sleep(0.01)
        again = use.get(out)
    assert again[0] == total + 50


def test_human_sizes():
    assert tidy.human(512) == "512 B"
    assert tidy.human(1536) == "1.5 KB"
    assert tidy.human(8_300_000) == "7.9 MB"
    assert tidy.human(2 * 1024**3) == "2.0 GB"
