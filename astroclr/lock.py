"""One writer per directory: an OS file lock (``filelock``) on ``.lock``, which names its holder.

A run directory and a prepared-dataset directory are each written by one process at a time.
The lock itself is the operating system's (``flock`` through :class:`filelock.FileLock`): it
is released by the kernel when its process ends, however it ends, so a lock left by a killed
process is simply free again. Once taken, the holder writes its pid, host, start time and
command into the lock file, so a second writer fails at once with a line naming the holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from astroclr.plugin.specs import AstroclrError

LOCK_NAME = ".lock"

#: the locks this process holds, by lock-file path (a FileLock object holds the OS lock)
_HELD: dict[Path, Any] = {}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _holder(info: dict[str, Any]) -> str:
    text = (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since "
            f"{info.get('started', '?')}")
    return text + (f": {info['command']}" if info.get("command") else "")


def _command() -> str:
    words = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    text = " ".join(words)
    return text if len(text) <= 120 else text[:117] + "..."


def acquire(directory: str | Path, what: str) -> Path:
    """Take the lock of ``directory`` (which must exist) for a ``what`` (e.g. "run"); a held
    lock is an error naming its holder, at once (no waiting)."""
    import filelock

    path = Path(directory) / LOCK_NAME
    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        info = _read(path)
        if not info:  # the holder has not written its name yet
            raise AstroclrError(f"{directory} is in use by another astroclr process "
                                f"({path} is locked)") from None
        raise AstroclrError(f"{directory} is in use by another astroclr "
                            f"{info.get('what', 'process')} ({_holder(info)}); wait for it to "
                            f"finish") from None
    except OSError as exc:
        raise AstroclrError(f"cannot lock {directory}: {exc.strerror or exc}") from None
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": what,
            "command": _command()}
    try:
        path.write_text(json.dumps(mine))  # the OS lock stays on its own descriptor
    except OSError as exc:
        lock.release()
        raise AstroclrError(f"cannot lock {directory}: {exc.strerror or exc}") from None
    _HELD[path] = lock
    return path


def release(path: Path) -> None:
    """Release the lock at ``path`` if this process holds it, removing the file (a peer that
    opened it meanwhile sees the file gone and takes a fresh one); another's is left alone."""
    lock = _HELD.pop(Path(path), None)
    if lock is None:
        return
    try:
        Path(path).unlink(missing_ok=True)
    finally:
        lock.release()


@contextlib.contextmanager
def locked(directory: str | Path, what: str, enabled: bool = True) -> Iterator[Path | None]:
    """Hold the lock of ``directory`` for the block (``enabled=False``: a no-op, for the
    processes of a distributed launch other than the first, which write nothing)."""
    if not enabled:
        yield None
        return
    path = acquire(directory, what)
    try:
        yield path
    finally:
        release(path)
