"""One writer per directory (astroclr.lock, RunDir.lock) and outputs checked before any work
(astroclr.files.check_writable)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from astroclr.files import check_writable
from astroclr.lock import LOCK_NAME, acquire, locked, release
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.rundir import RunDir


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


def _lock_file(folder, pid, host=None):
    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                "started": "2026-01-01T00:00:00", "what": "run"}))


def test_lock_names_its_holder_and_is_released(tmp_path):
    with locked(tmp_path, "run") as path:
        info = json.loads(path.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["started"]
        assert [p.name for p in tmp_path.iterdir()] == [LOCK_NAME]  # no temporary file left
    assert not path.exists()


def _holder_process(folder):
    """Another process holding the lock of ``folder`` (as a run would), until killed."""
    code = ("import sys, time\nfrom astroclr.lock import acquire\n"
            f"acquire({str(folder)!r}, 'run')\nprint('held', flush=True)\ntime.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, "--out", "runs/x"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_makes_a_second_writer_fail_at_once(tmp_path):
    holder = _holder_process(tmp_path)
    try:
        with pytest.raises(AstroclrError, match=f"in use by another astroclr run \\(pid "
                                                f"{holder.pid} on host {socket.gethostname()} "
                                                f"since 20[0-9-]+T[0-9:+-]+: -c --out runs/x\\)"):
            acquire(tmp_path, "run")
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid  # untouched
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_process_is_free_again(tmp_path):
    holder = _holder_process(tmp_path)
    holder.kill()  # SIGKILL: no clean-up ran, the lock file and its name stay behind
    holder.wait()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid
    path = acquire(tmp_path, "run")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    release(path)
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_left_behind_does_not_lock(tmp_path):
    """What locks is the OS lock, held by a live process: a file naming a dead process, or a
    process on another host, is only a name."""
    for host in (None, "elsewhere.example"):
        _lock_file(tmp_path, _dead_pid(), host=host)
        with locked(tmp_path, "run") as path:
            assert json.loads(path.read_text())["host"] == socket.gethostname()


def test_a_second_lock_in_the_same_process_fails_too(tmp_path):
    with locked(tmp_path, "run"):
        with pytest.raises(AstroclrError, match=f"pid {os.getpid()}"):
            acquire(tmp_path, "prepare")


def test_release_leaves_another_process_lock_alone(tmp_path):
    _lock_file(tmp_path, 1)
    release(tmp_path / LOCK_NAME)
    assert (tmp_path / LOCK_NAME).exists()


def test_rundir_lock_removes_the_folder_it_created_when_nothing_was_written(tmp_path):
    rundir = RunDir(tmp_path / "new")
    with pytest.raises(RuntimeError):
        with rundir.lock():
            assert (rundir.path / LOCK_NAME).exists()
            raise RuntimeError("data failed to load")
    assert not rundir.path.exists()


def test_rundir_lock_is_not_taken_by_other_ranks(tmp_path):
    rundir = RunDir(tmp_path)
    with rundir.lock(enabled=False):
        assert not (tmp_path / LOCK_NAME).exists()


def test_check_writable_names_what_is_in_the_way(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AstroclrError, match=f"cannot write --out {blocker}/a/b: {blocker} is a "
                                            f"file, not a directory"):
        check_writable(blocker / "a" / "b", "--out")
    with pytest.raises(AstroclrError, match="exists and is not a directory"):
        check_writable(blocker, "--out")
    with pytest.raises(AstroclrError, match="is a directory; give a file name"):
        check_writable(tmp_path, "--out", is_dir=False)
    assert check_writable(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(AstroclrError, match="is not writable"):
            check_writable(ro / "out", "--out")
    finally:
        ro.chmod(0o700)
