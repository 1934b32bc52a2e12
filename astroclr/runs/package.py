"""A model package (``astroclr export``): a run's trained encoder with everything needed to
trust and use it elsewhere, checked against its manifest before anything in it is used.

::

    MODEL_CARD.md      what the model is, expects and was measured to do (generated)
    manifest.json      format, summary, and the size and SHA-256 of every other file
    model.safetensors  the encoder's weights (tensors only: nothing is unpickled)
    encoder.onnx       with --onnx: the encoder; input the preprocessed images
    config.toml, run.json, metrics.json, embeddings.fits, anomaly.npz
                       as in the run directory (embeddings: the run's own galaxies; the
                       anomaly scorer that embed and predict measure a catalogue's shift by)

A package opens wherever a run directory does (:func:`astroclr.runs.rundir.open_run`), so
``astroclr.load``, ``embed``, ``finetune`` and ``similar`` take either. This module does not
import the run directory's module (which imports it).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePath
from typing import Any, Iterable

from astroclr.files import file_digest
from astroclr.plugin.specs import AstroclrError

FORMAT = "astroclr-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
CARD = "MODEL_CARD.md"
ONNX = "encoder.onnx"
#: ONNX graph names: the preprocessed images in, the representations out
ONNX_INPUT = "images"
ONNX_OUTPUT = "representation"


def is_package(path: str | Path) -> bool:
    """Whether ``path`` is a model package (it holds a manifest)."""
    return (Path(path) / MANIFEST).is_file()


def sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def manifest_entries(folder: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes", "sha256"}}`` of files of ``folder``."""
    return {n: {"bytes": (folder / n).stat().st_size, "sha256": sha256(folder / n)}
            for n in sorted(names)}


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of package ``path``, its form checked (not yet the files)."""
    file = Path(path) / MANIFEST
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise AstroclrError(f"model package {path}: cannot read {MANIFEST}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or \
            not isinstance(doc.get("files"), dict):
        raise AstroclrError(f"model package {path}: {MANIFEST} is not an astroclr model "
                            f"manifest (format {FORMAT!r} with a files table)")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise AstroclrError(f"model package {path} has format version {doc['format_version']}; "
                            f"this astroclr reads up to {FORMAT_VERSION}: upgrade astroclr")
    return doc


def verify(path: str | Path, required: Iterable[str]) -> dict[str, Any]:
    """The manifest of package ``path`` after every file it lists was found unchanged (size
    and SHA-256); ``required`` files must be listed. A one-line error names the first file
    that is missing, changed or unlisted."""
    path = Path(path)
    doc = read_manifest(path)
    files = doc["files"]
    for name in required:
        if name not in files:
            raise AstroclrError(f"model package {path}: {name} is not listed in {MANIFEST}")
    for name, entry in files.items():
        rel = PurePath(name)
        if rel.is_absolute() or ".." in rel.parts or len(rel.parts) != 1:
            raise AstroclrError(f"model package {path}: {MANIFEST} lists {name!r}, not a file "
                                f"of the package")
        file = path / name
        if not file.is_file():
            raise AstroclrError(f"model package {path}: {name} is missing")
        if not isinstance(entry, dict) or file.stat().st_size != entry.get("bytes") or \
                sha256(file) != entry.get("sha256"):
            raise AstroclrError(f"model package {path}: {name} does not match its checksum in "
                                f"{MANIFEST} (changed or corrupted after export); export or "
                                f"download the package again")
    return doc


def write_weights(encoder: Any, file: Path) -> None:
    """The encoder's weights as safetensors (contiguous CPU tensors, no pickle)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(tensors, str(file), metadata={"format": "pt", "producer": FORMAT})
    file.chmod(0o644)  # safetensors writes 0600; the package is meant to be shared


def model_directory(name: str) -> Path:
    """The package directory of the model plugin ``name`` (``astroclr models``); an unknown
    name lists the installed ones."""
    from astroclr.plugin.registry import get_registry

    provided = get_registry().parts("model")
    spec = get_registry().get("model", name)
    folder = spec.directory()
    if not is_package(folder):
        raise AstroclrError(f"model {name!r} of package {provided[name].package!r}: {folder} is "
                            f"not a model package (no {MANIFEST})")
    return folder


def model_source(run_dir: str | Path | None, model: str | None) -> Path:
    """The directory a command reads its model from: a run directory or package, or the
    package of ``--model NAME``; exactly one of them."""
    if (run_dir is None) == (model is None):
        raise AstroclrError("give a run directory or model package, or --model NAME "
                            f"({'both given' if model else 'neither given'}; astroclr models "
                            f"lists the installed models)")
    return Path(run_dir) if run_dir is not None else model_directory(str(model))


def summary(path: str | Path) -> str:
    """The one-line summary a package's manifest holds (``astroclr models``)."""
    try:
        return str(read_manifest(path).get("summary", ""))
    except AstroclrError as exc:
        return f"(unreadable: {exc})"
