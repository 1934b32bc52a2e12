"""The run directory: the one place that knows its layout, and every read and write of it.

::

    config.toml        the resolved configuration (reusable with --config)
    run.json           status, versions, survey metadata, preprocessing, timings, skips
    checkpoints/       last.ckpt, schedule.json, embedding/ while embedding (atomic writes)
    model.pt           the trained encoder's weights (tensors only)
    embeddings.fits    catalogue columns + representation vector per galaxy
    metrics.json       every number in the report
    skipped.csv        galaxies the dataset could not read, with the reason
    figures/           evaluator figures
    report.md, report.html
    .lock              while a process writes here: its pid, host and start time
"""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

from astroclr.files import (
    atomic_path,
    atomic_write,
    check_writable,
    read_embeddings_table,
    read_json,
    write_json,
)
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.state import RunState

__all__ = ["RunDir", "RunState", "Run", "open_run", "embeddings_file", "read_embeddings_table",
           "safe_name"]

if TYPE_CHECKING:
    import torch
    from astropy.table import Table

    from astroclr.data.galaxies import Galaxies
    from astroclr.data.prepared import Skip


class RunDir:
    """Paths, reads and writes of one run directory (which need not exist yet)."""

    CONFIG = "config.toml"
    STATE = "run.json"
    MODEL = "model.pt"
    EMBEDDINGS = "embeddings.fits"
    METRICS = "metrics.json"
    REPORT_MD = "report.md"
    REPORT_HTML = "report.html"
    SKIPPED = "skipped.csv"
    ANOMALY = "anomaly.npz"
    FILES = (CONFIG, STATE, MODEL, EMBEDDINGS, METRICS, REPORT_MD, REPORT_HTML, SKIPPED)
    DIRS = ("checkpoints", "figures", "logs")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def state(self) -> Path:
        return self.path / self.STATE

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def embeddings(self) -> Path:
        return self.path / self.EMBEDDINGS

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def report_md(self) -> Path:
        return self.path / self.REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.path / self.REPORT_HTML

    @property
    def anomaly(self) -> Path:
        """The anomaly scorer fitted on the run's galaxies (astroclr.evaluate.anomaly)."""
        return self.path / self.ANOMALY

    @property
    def skipped(self) -> Path:
        return self.path / self.SKIPPED

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def schedule(self) -> Path:
        return self.checkpoints / "schedule.json"

    @property
    def embedding_work(self) -> Path:
        """The parts of the run's embedding while it is made (resumable; removed once
        ``embeddings.fits`` holds the representations)."""
        return self.checkpoints / "embedding"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def training_log(self) -> Path:
        """Lightning's CSV log of the training steps (loss, learning rate)."""
        return self.logs / "metrics.csv"

    def figure(self, stem: str, suffix: str = ".png") -> Path:
        """A figure path inside ``figures/`` whatever ``stem`` holds (ids are data, not paths)."""
        return self.figures / (safe_name(stem) + suffix)

    # -- state ---------------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether anything a run writes is already here."""
        return self.path.is_dir() and any((self.path / f).exists() for f in self.FILES + self.DIRS)

    def require(self) -> "RunDir":
        """This directory, or a one-line error when it is not a run directory."""
        if not self.config.is_file() or not self.state.is_file():
            raise AstroclrError(f"{self.path} is not an astroclr run directory (no "
                                f"{self.CONFIG}/{self.STATE})")
        return self

    def check_writable(self, what: str = "the run directory") -> "RunDir":
        """A one-line error, before any data is loaded, when this directory (or its
        ``figures/``) cannot be created or written."""
        check_writable(self.path, what)
        if self.path.is_dir():
            check_writable(self.figures, "the figures folder")
        return self

    @contextlib.contextmanager
    def lock(self, enabled: bool = True) -> Iterator[None]:
        """Hold ``.lock`` for the block: a second writer of this directory fails at once,
        naming the holder (see :mod:`astroclr.lock`). The directory is created if needed and
        removed again if the block fails leaving it empty."""
        from astroclr.lock import locked

        if not enabled:
            yield
            return
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AstroclrError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        try:
            with locked(self.path, "run"):
                yield
        finally:
            if created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only when empty: a failure before anything was written

    def clear(self) -> None:
        """Remove what a previous run wrote (``--overwrite``); other files stay."""
        for name in self.FILES:
            (self.path / name).unlink(missing_ok=True)
        for name in self.DIRS:
            shutil.rmtree(self.path / name, ignore_errors=True)

    def read_state(self) -> dict[str, Any]:
        """``run.json`` as written, checked against :class:`RunState` (a one-line error naming
        the field that deviates)."""
        return self.run_state()[1]

    def run_state(self) -> "tuple[RunState, dict[str, Any]]":
        """``run.json`` as a typed :class:`RunState` and as the dict written."""
        from astroclr.schema import read_document

        if not self.state.is_file():
            raise AstroclrError(f"{self.path} has no {self.STATE}")
        return read_document(RunState, self.state)

    def write_state(self, state: Mapping[str, Any]) -> None:
        write_json(self.state, state)

    def read_config(self) -> dict[str, Any]:
        from astroclr.config import read_toml

        return read_toml(self.config)

    def write_config(self, cfg: Mapping[str, Any]) -> None:
        from astroclr.config import to_toml

        atomic_write(self.config, to_toml(cfg))

    def read_metrics(self) -> dict[str, Any]:
        return read_json(self.metrics, {})

    def write_metrics(self, doc: Mapping[str, Any]) -> None:
        write_json(self.metrics, doc)

    def write_skipped(self, skips: "Sequence[Skip]") -> None:
        """``skipped.csv``: every galaxy the dataset could not use, with the reason."""
        from astroclr.data.prepared import write_skipped_csv

        write_skipped_csv(self.skipped, skips)

    # -- model ---------------------------------------------------------------------------------
    def save_encoder(self, encoder: "torch.nn.Module") -> None:
        import torch

        with atomic_path(self.model) as tmp:
            torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, tmp)

    def load_encoder_weights(self) -> dict[str, Any]:
        from astroclr.train.weights import read_weights

        if not self.model.is_file():
            raise AstroclrError(f"run {self.path} has no trained model ({self.MODEL}); training "
                                f"did not finish: resume it with astroclr run --resume {self.path}")
        return read_weights(self.model)

    # -- embeddings ----------------------------------------------------------------------------
    def write_embeddings(self, galaxies: "Galaxies", representations: np.ndarray) -> Path:
        from astroclr.evaluate.embed import write_embeddings

        return write_embeddings(self.embeddings, galaxies, representations)

    def read_embeddings(self) -> "Table":
        """The embeddings table, with ids as written (str ids come back as str, not bytes)."""
        return read_embeddings_table(self.embeddings)

    def add_columns(self, columns: Mapping[str, np.ndarray]) -> Path:
        """Add (or replace) per-galaxy columns of ``embeddings.fits``, rewriting it atomically.

        Safe while others read it: a reader sees the previous file or the new one, never half
        of one, and the neighbour index stays valid (it is keyed by the representations, which
        are copied unchanged). The table is held in memory while rewritten (as the run already
        holds its representations). ``id`` and ``representation`` cannot be replaced.
        """
        from astropy.table import Table

        if not columns:
            return self.embeddings
        table = Table.read(self.embeddings)  # as written: no byte-string conversion
        for name, values in columns.items():
            values = np.asarray(values)
            if name in ("id", "representation"):
                raise AstroclrError(f"{self.embeddings}: column {name!r} cannot be replaced")
            if len(values) != len(table):
                raise AstroclrError(f"{self.embeddings}: column {name!r} has {len(values)} values "
                                    f"for {len(table)} galaxies")
            table[name] = values
        with atomic_path(self.embeddings) as tmp:
            table.write(tmp, format="fits")
        return self.embeddings

    def embedding_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, representations)`` of the run; a one-line error when unusable."""
        table = self.read_embeddings()
        return np.asarray(table["id"]), np.asarray(table["representation"], dtype=np.float32)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: Any, limit: int = 80) -> str:
    """A file-name stem from any id: path separators, dots-only names and control characters
    never survive, so a hostile id (``../x``, ``a/../../b``, ``/abs``, NUL) cannot name a path
    elsewhere. A name that had to be changed (or shortened) ends in a short hash of the id, so
    two ids never share a file (``a/b`` and ``a_b``)."""
    import hashlib

    raw = str(text)
    stem = _UNSAFE.sub("_", raw).strip("._") or "_"
    if stem == raw and len(stem) <= limit:
        return stem
    digest = hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem[: max(1, limit - 9)]}-{digest}"


@dataclass
class Run:
    """A finished (or evaluated) run: its directory, resolved configuration and state."""

    rundir: RunDir
    config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.rundir.path

    @property
    def metrics(self) -> dict[str, Any]:
        return self.rundir.read_metrics()

    @property
    def report(self) -> Path:
        return self.rundir.report_md

    def embeddings(self) -> "Table":
        """The embeddings table (id, labels, ``representation``)."""
        return self.rundir.read_embeddings()

    def galaxies(self) -> "Galaxies":
        """The run's dataset, loaded again with the run's configuration."""
        from astroclr.config import resolve
        from astroclr.plugin.registry import get_registry
        from astroclr.runs.build import load_dataset

        registry = get_registry()
        return load_dataset(registry, resolve(self.config, registry))


class PackageDir(RunDir):
    """A model package (``astroclr export``, :mod:`astroclr.runs.package`) read as a run
    directory: usable only after its checksums are verified, and never written (figures a
    command would write into a run go to the working directory instead)."""

    def require(self) -> "PackageDir":
        from astroclr.runs.package import WEIGHTS, verify

        super().require()
        verify(self.path, (self.CONFIG, self.STATE, WEIGHTS))
        return self

    @property
    def model(self) -> Path:
        from astroclr.runs.package import WEIGHTS

        return self.path / WEIGHTS

    def figure(self, stem: str, suffix: str = ".png") -> Path:
        return Path.cwd() / (safe_name(stem) + suffix)

    def check_writable(self, what: str = "the run directory") -> "PackageDir":
        raise AstroclrError(f"{self.path} is a model package (astroclr export): it is read, "
                            f"never written; evaluate or resume the run it was exported from")

    def lock(self, enabled: bool = True) -> Any:
        self.check_writable()


def open_run(run_dir: str | Path) -> Run:
    """Open an existing run directory, or a model package read as one after its checksums
    are verified (a one-line error when it is neither)."""
    from astroclr.runs.package import is_package

    rundir = (PackageDir if is_package(run_dir) else RunDir)(run_dir).require()
    return Run(rundir, rundir.read_config(), rundir.read_state())


def embeddings_file(path: str | Path) -> Path:
    """The embeddings table ``path`` names: a run directory's (or model package's)
    ``embeddings.fits``, else ``path`` itself (a table of ``astroclr embed``). A missing path
    without a suffix is taken for a run directory, so its error names the table it lacks."""
    path = Path(path)
    is_run = path.is_dir() or (not path.exists() and not path.suffix)
    return RunDir(path).embeddings if is_run else path
