"""``astroclr export``: a run's trained encoder as a self-describing model package (see
:mod:`astroclr.runs.package` for its layout).

The package is written beside ``out`` and renamed into place when complete, so a failed export
leaves nothing half-written, and an existing folder is replaced only with ``overwrite`` and
only when it is a model package itself.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astroclr.files import write_json
from astroclr.plugin.specs import AstroclrError
from astroclr.runs import package as pkg
from astroclr.runs.rundir import PackageDir, RunDir, open_run

if TYPE_CHECKING:
    from astroclr.runs.rundir import Run
    from astroclr.session.trained import TrainedModel

DEFAULT_LICENCE = "BSD-3-Clause (as astroclr), unless the exporter states otherwise"
#: the ONNX operator set the encoder is written with (onnxruntime >= 1.12 reads it)
ONNX_OPSET = 17


@dataclass
class Exported:
    """What :func:`export` wrote."""

    path: Path
    files: dict[str, int]

    @property
    def bytes(self) -> int:
        return sum(self.files.values())


def export(run_dir: str | Path, out: str | Path, *, onnx: bool = False, embeddings: bool = True,
           licence: str = DEFAULT_LICENCE, overwrite: bool = False) -> Exported:
    """Write the model package of run ``run_dir`` to ``out``: weights (safetensors), model
    card, resolved configuration, the run's state and metrics, its embeddings (unless
    ``embeddings=False``), with ``onnx`` the encoder as ONNX, and a manifest of checksums."""
    from astroclr.session.trained import load

    existing = open_run(run_dir)
    if isinstance(existing.rundir, PackageDir):
        raise AstroclrError(f"{run_dir} is a model package already; export the run it came from")
    out = Path(out)
    _check_out(out, existing.dir, overwrite)
    if onnx:
        _require_onnx()
    model = load(run_dir, device="cpu")
    work = out.with_name(f".{out.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir(parents=True)
        files = _write(existing, model, work, onnx, embeddings, licence)
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except OSError as exc:
        raise AstroclrError(f"cannot write the package {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Exported(out, files)


def _check_out(out: Path, run: Path, overwrite: bool) -> None:
    if out.resolve() == run.resolve() or run.resolve() in out.resolve().parents:
        raise AstroclrError(f"--out {out}: the package must not be written inside the run")
    if out.exists() and not out.is_dir():
        raise AstroclrError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise AstroclrError(f"--out {out} is not empty; choose another folder or pass "
                                f"--overwrite")
        if not pkg.is_package(out):
            raise AstroclrError(f"--out {out} holds files and is not a model package: not "
                                f"replaced, even with --overwrite")
    from astroclr.files import check_writable

    check_writable(out.parent if out.parent != Path("") else Path("."), "--out")


def _write(run: "Run", model: "TrainedModel", work: Path, onnx: bool, embeddings: bool,
           licence: str) -> dict[str, int]:
    rundir = run.rundir
    shutil.copyfile(rundir.config, work / RunDir.CONFIG)
    write_json(work / RunDir.STATE, run.state)
    metrics = rundir.read_metrics()
    if rundir.metrics.is_file():
        shutil.copyfile(rundir.metrics, work / RunDir.METRICS)
    if embeddings and rundir.embeddings.is_file():
        shutil.copyfile(rundir.embeddings, work / RunDir.EMBEDDINGS)
    if rundir.anomaly.is_file():  # embed and predict score a catalogue's shift against it
        shutil.copyfile(rundir.anomaly, work / RunDir.ANOMALY)
    pkg.write_weights(model.encoder, work / pkg.WEIGHTS)
    if onnx:
        export_onnx(model, work / pkg.ONNX)
    from astroclr.session.card import model_card, summary_line

    sizes = {p.name: p.stat().st_size for p in sorted(work.iterdir())}
    text = model_card(run.state, run.config, metrics, sorted(sizes.items()),
                      _dataset_line(run.config), licence, onnx)
    (work / pkg.CARD).write_text(text, encoding="utf-8")
    entries = pkg.manifest_entries(work, [p.name for p in work.iterdir()])
    write_json(work / pkg.MANIFEST, {
        "format": pkg.FORMAT, "format_version": pkg.FORMAT_VERSION,
        "astroclr_version": run.state.get("astroclr_version"),
        "summary": summary_line(run.state, metrics),
        "onnx": {"file": pkg.ONNX, "input": pkg.ONNX_INPUT, "output": pkg.ONNX_OUTPUT,
                 "opset": ONNX_OPSET} if onnx else None,
        "files": entries})
    return {p.name: p.stat().st_size for p in sorted(work.iterdir())}


def _dataset_line(config: dict[str, Any]) -> str:
    """How step 1 of the card reads images: the dataset plugin and the parameters that differ
    from its defaults (the preprocessing ones have steps of their own)."""
    from astroclr.plugin.params import PREPROCESSING_DEFAULTS
    from astroclr.plugin.registry import get_registry

    name = config.get("run", {}).get("dataset", "?")
    params = config.get("dataset", {})
    try:
        spec = get_registry().get("dataset", name)
        defaults = {p.name: p.default for p in spec.all_params}
    except AstroclrError:
        defaults = {}
    shown = {k: v for k, v in params.items() if k not in PREPROCESSING_DEFAULTS
             and (k not in defaults or defaults[k] != v or k in ("input", "bands", "size"))}
    text = ", ".join(f"{k} = {v}" for k, v in shown.items())
    return (f"dataset plugin `{name}` reads them ({text}; the [dataset] table of config.toml "
            f"holds all its parameters)")


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise AstroclrError("--onnx needs the onnx package: pip install 'astroclr[export]'") \
            from None


def export_onnx(model: "TrainedModel", file: Path) -> None:
    """The encoder as ONNX: input ``images``, the preprocessed (N, C, H, W) float32 batch
    (``model.preprocess(raw)``), output ``representation`` (N, D); the batch size is free."""
    import inspect
    import warnings

    import onnx
    import torch

    encoder = model.encoder.cpu().eval()
    x = torch.zeros(2, len(model.bands), model.image_size, model.image_size)
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # the TorchScript exporter: the newer one needs onnxscript, one more dependency
        options["dynamo"] = False
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # its deprecation notice, and tracer warnings
        torch.onnx.export(encoder, (x,), str(file), input_names=[pkg.ONNX_INPUT],
                          output_names=[pkg.ONNX_OUTPUT], opset_version=ONNX_OPSET,
                          dynamic_axes={pkg.ONNX_INPUT: {0: "batch"},
                                        pkg.ONNX_OUTPUT: {0: "batch"}}, **options)
    onnx.checker.check_model(str(file))
