"""One writer per directory: a lock file naming its holder, taken atomically, stale ones taken over.

A run directory and a prepared-dataset directory are each written by one process at a time.
The lock is a small JSON file (``.lock``: pid, host, start time) that appears complete or not
at all: it is written under a temporary name and hard-linked into place, and a link, like
``O_EXCL``, fails when the name exists. A second writer therefore fails at once with a line
naming the holder. A lock left by a process that died (same host, pid no longer alive) is
taken over; a lock from another host cannot be judged from here and is never taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from astroclr.plugin.specs import AstroclrError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _holder(info: dict[str, Any]) -> str:
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since "
            f"{info.get('started', '?')}")


def _is_stale(info: dict[str, Any]) -> bool:
    pid = info.get("pid")
    return (info.get("host") == socket.gethostname() and isinstance(pid, int)
            and pid != os.getpid() and not _alive(pid))


def _create(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists; False when it does."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    try:
        os.link(tmp, path)  # atomic, and refuses an existing name: the lock appears complete
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: O_EXCL, written just after creation
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, stale: dict[str, Any]) -> None:
    """Move a stale lock aside, unless another process replaced it meanwhile."""
    aside = path.with_name(f"{path.name}.stale.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process took it over first
    if _read(aside) != stale:  # not the one judged stale: put it back where it was
        with contextlib.suppress(OSError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def acquire(directory: str | Path, what: str) -> Path:
    """Take the lock of ``directory`` (which must exist) for a ``what`` (e.g. "run")."""
    path = Path(directory) / LOCK_NAME
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": what}
    text = json.dumps(mine)
    for _ in range(5):
        try:
            if _create(path, text):
                return path
        except OSError as exc:
            raise AstroclrError(f"cannot lock {directory}: {exc.strerror or exc}") from None
        info = _read(path)
        if info is None:
            continue  # released between our attempt and the read: try again
        if _is_stale(info):
            _take_over(path, info)
            continue
        if not info:  # being written by a writer without hard links, or damaged
            raise AstroclrError(f"{directory} is locked by another astroclr process ({path} is "
                                f"unreadable); remove {path} if no astroclr process uses it")
        raise AstroclrError(f"{directory} is in use by another astroclr {info.get('what', 'process')} "
                            f"({_holder(info)}); wait for it to finish, or remove {path} if that "
                            f"process is gone")
    raise AstroclrError(f"cannot lock {directory}: {path} keeps changing")


def release(path: Path) -> None:
    """Remove the lock at ``path`` if it is still this process's."""
    info = _read(path)
    if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


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
