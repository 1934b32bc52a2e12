"""The outputs of a command, checked before any work and written by one process at a time.

Every verb that writes a file or a directory (``embed``, ``predict``, ``finetune``,
``similar``) calls :func:`check_output` first, so a bad ``--out`` costs a second, not an
inference over a million galaxies: its parent must be a directory we can write, it must not be
one of the command's inputs, nor inside a run or classifier directory the command reads (a
run's own ``embeddings.fits`` is not replaced by ``embed -o``), nor an existing file unless
``--overwrite``, nor a directory where a file is expected.

:func:`output_work` holds the resumable work folder beside an output (``.OUT.parts/``) under
the same lock as run directories (:mod:`astroclr.lock`): a second writer of the same output
fails at once naming the first. A failure before anything resumable was written leaves no
folder behind. :func:`claimed_dir` (and its decorator :func:`locks_out_dir`) does the same
for an output that is a directory (``finetune --out``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from astroclr.files import check_writable
from astroclr.plugin.specs import AstroclrError

F = TypeVar("F", bound=Callable[..., Any])


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_output(path: str | Path, what: str = "--out", *, inputs: Iterable[object] = (),
                 reads: Iterable[str | Path] = (), overwrite: bool = False,
                 is_dir: bool = False, replaceable: bool = False) -> Path:
    """A one-line error unless ``path`` may be written by this command (see the module).

    ``inputs``: files or folders the command reads (anything that is not an existing path is
    ignored, so a dataset's parameters can be passed as they are); ``reads``: run or
    classifier directories it reads, inside which nothing is written; ``replaceable``: an
    existing file is replaced without ``--overwrite`` (a figure drawn again).
    """
    path = Path(path)
    check_writable(path, what, is_dir=is_dir)
    for item in inputs:
        if isinstance(item, (str, Path)) and str(item) and Path(item).exists() \
                and _same(path, Path(item)):
            raise AstroclrError(f"{what} {path} is an input of this command; write the output "
                                f"elsewhere")
    for folder in reads:
        folder = Path(folder)
        if folder.is_dir() and _inside(path, folder):
            raise AstroclrError(f"{what} {path} is inside {folder}, which this command reads; "
                                f"write the output elsewhere")
    if not is_dir and path.is_file() and not (overwrite or replaceable):
        raise AstroclrError(f"{what} {path} exists; pass --overwrite to replace it")
    return path


def work_dir(out: str | Path) -> Path:
    """The resumable work folder of an output file: ``.NAME.parts`` beside it."""
    out = Path(out)
    return out.with_name(f".{out.name}.parts")


@contextlib.contextmanager
def output_work(out: str | Path, what: str, enabled: bool = True) -> Iterator[Path]:
    """Create and lock ``out``'s work folder for the block (``what``: the command, named to a
    second writer). On failure the folder is removed unless it holds resumable parts."""
    from astroclr.lock import locked

    work = work_dir(out)
    if not enabled:  # a process of a distributed launch other than the first
        work.mkdir(parents=True, exist_ok=True)
        yield work
        return
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AstroclrError(f"cannot create {work}: {exc.strerror or exc}") from None
    try:
        with locked(work, what):
            yield work
    except BaseException:
        # parts are plain names; the lock's files are dot-files
        if work.is_dir() and not [p for p in work.iterdir() if not p.name.startswith(".")]:
            shutil.rmtree(work, ignore_errors=True)
        raise


@contextlib.contextmanager
def claimed_dir(out: str | Path, what: str) -> Iterator[Path]:
    """Create (if need be) and lock an output directory for the block, as a run directory is
    (``what``: the command, named to a second writer, which fails at once). On failure the
    folders the block created are removed again while they hold nothing but the lock."""
    from astroclr.lock import LOCK_NAME, locked

    out = Path(out)
    check_writable(out, "--out", is_dir=True)
    created = out
    while not created.parent.exists():  # the topmost folder this call makes
        created = created.parent
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AstroclrError(f"cannot create --out {out}: {exc.strerror or exc}") from None
    try:
        with locked(out, what):
            yield out
    except BaseException:
        if made and not [p for p in created.rglob("*") if p.is_file() and p.name != LOCK_NAME]:
            shutil.rmtree(created, ignore_errors=True)
        raise


def locks_out_dir(what: str) -> Callable[[F], F]:
    """Decorate a function ``fn(source, out, ...)`` that writes the directory ``out``: the
    whole call holds :func:`claimed_dir` (its checks of ``out`` included, so two calls into one
    directory cannot both pass them)."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def call(source: Any, out: str | Path, *args: Any, **kwargs: Any) -> Any:
            with claimed_dir(out, what):
                return fn(source, out, *args, **kwargs)
        return call  # type: ignore[return-value]
    return decorate
