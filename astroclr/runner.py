"""One run: configuration → training → embeddings → evaluation → report. The Python API's heart.

A run directory holds::

    config.toml        the resolved configuration (reusable with --config)
    run.json           status, versions, survey metadata, preprocessing, timings
    checkpoints/       last.ckpt and step/epoch checkpoints (atomic writes)
    model.pt           the trained encoder's weights (tensors only)
    embeddings.fits    catalogue columns + representation vector per galaxy
    metrics.json       every number in the report
    figures/           evaluator figures
    report.md, report.html
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from astroclr import config as cfgmod
from astroclr.specs import AstroclrError, ConfigError

if TYPE_CHECKING:
    import torch
    from astropy.table import Table

    from astroclr.data import Galaxies
    from astroclr.plugins import Registry

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.toml"
STATE_FILE = "run.json"
EMBEDDINGS_FILE = "embeddings.fits"
_RUN_FILES = (CONFIG_FILE, STATE_FILE, MODEL_FILE, EMBEDDINGS_FILE, "metrics.json", "report.md",
              "report.html")
_RUN_DIRS = ("checkpoints", "figures", "logs")

# Keyword arguments of run() that set a core option, e.g. run(epochs=2, batch_size=64).
_SHORTCUTS = {p.name: "run" for p in cfgmod.RUN_PARAMS} | {p.name: "train" for p in cfgmod.TRAIN_PARAMS}


@dataclass
class Run:
    """A finished (or evaluated) run directory."""

    dir: Path
    config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        path = self.dir / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def report(self) -> Path:
        return self.dir / "report.md"

    def embeddings(self) -> "Table":
        """The embeddings table (id, labels, ``representation``)."""
        from astropy.table import Table

        path = self.dir / EMBEDDINGS_FILE
        if not path.exists():
            raise AstroclrError(f"run {self.dir} has no {EMBEDDINGS_FILE} (training did not finish?)")
        return Table.read(path)

    def galaxies(self) -> "Galaxies":
        """The run's dataset, loaded again with the run's configuration."""
        from astroclr.plugins import get_registry

        registry = get_registry()
        spec = registry.get("dataset", self.config["run"]["dataset"])
        return spec.load(**self.config["dataset"])


def open_run(run_dir: str | Path) -> Run:
    """Open an existing run directory (clear error when it is not one)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / STATE_FILE).is_file():
        raise AstroclrError(f"{run_dir} is not an astroclr run directory (no {CONFIG_FILE}/{STATE_FILE})")
    try:
        state = json.loads((run_dir / STATE_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise AstroclrError(f"{run_dir / STATE_FILE} is corrupt: {exc}") from exc
    return Run(run_dir, cfgmod.read_toml(run_dir / CONFIG_FILE), state)


def assemble_config(config: str | Path | Mapping[str, Any] | None = None,
                    sets: Sequence[str] = (), preset: str | None = None,
                    **overrides: Any) -> dict[str, Any]:
    """Defaults ← preset ← config file or mapping ← ``--set`` assignments ← keyword shortcuts.

    Giving ``epochs`` (and no ``time_budget``) as a shortcut switches the time budget off, so
    ``--epochs 3`` means three epochs whatever the preset's budget.
    """
    raw: dict[str, Any] = cfgmod.read_preset(preset) if preset else {}
    if isinstance(config, (str, Path)):
        raw = cfgmod.merge(raw, cfgmod.read_toml(config))
    elif config is not None:
        raw = cfgmod.merge(raw, config)
    if overrides.get("epochs") is not None and overrides.get("time_budget") is None:
        overrides = dict(overrides, time_budget="")
    for assignment in sets:
        raw = cfgmod.merge(raw, cfgmod.parse_set(assignment))
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in _SHORTCUTS:
            raise ConfigError(f"unknown option {key!r}; options: {', '.join(sorted(_SHORTCUTS))}")
        raw = cfgmod.merge(raw, {_SHORTCUTS[key]: {key: value}})
    return raw


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _has_run(path: Path) -> bool:
    return path.is_dir() and any((path / f).exists() for f in _RUN_FILES + _RUN_DIRS)


def default_run_dir(cfg: Mapping[str, Any], root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    return Path(root) / f"{stamp}_{cfg['run']['dataset']}_{cfg['run']['backbone']}"


def _versions(registry: "Registry") -> dict[str, str]:
    out = {}
    for part in registry.all_parts():
        out.setdefault(part.package, part.version)
    return out


def build_backbone(registry: "Registry", cfg: Mapping[str, Any], in_channels: int,
                   image_size: int) -> "torch.nn.Module":
    spec = registry.get("backbone", cfg["run"]["backbone"])
    module = spec.build(in_channels, image_size, **cfg["backbone"])
    if not hasattr(module, "num_features"):
        raise AstroclrError(f"backbone {spec.name!r} has no num_features attribute")
    return module


def run(
    config: str | Path | Mapping[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: str | Path | None = None,
    progress: bool = True,
    sets: Sequence[str] = (),
    preset: str | None = None,
    **overrides: Any,
) -> Run:
    """Train SimCLR, embed every galaxy, run the evaluators and write the report.

    ``config`` is a TOML path or a mapping of tables; ``preset`` names a shipped configuration
    (``astroclr config --list-presets``); ``sets`` are ``"table.key=value"`` assignments; keyword shortcuts set core options (``dataset="sdss"``, ``epochs=2``,
    ``time_budget="5m"``, ...). ``out`` is the run directory (default ``runs/<time>_...``); an
    existing run there is refused unless ``overwrite`` (replace it) or ``resume`` is given.

    Everything is validated before anything is written; a failure leaves existing files intact.
    """
    from astroclr.plugins import get_registry

    from astroclr.launch import launched_rank

    registry = get_registry()
    # Lightning's ddp launcher and SLURM start this same call once per process: only the first
    # process creates, checks and writes the run directory.
    child = launched_rank() != 0
    if resume is not None:
        from astroclr.resume import prepare_resume

        run_dir, cfg, ckpt_path = prepare_resume(Path(resume), config, sets, overrides, registry)
    else:
        cfg = cfgmod.resolve(assemble_config(config, sets, preset, **overrides), registry)
        distributed = cfg["train"]["devices"] not in ("1", "auto") or cfg["train"]["num_nodes"] > 1
        if out is None and distributed:
            raise AstroclrError("give --out for a run on several devices or nodes, so that every "
                                "process writes to the same run directory")
        run_dir = Path(out) if out is not None else default_run_dir(cfg)
        ckpt_path = None
        if run_dir.exists() and not run_dir.is_dir():
            raise AstroclrError(f"output {run_dir} exists and is not a directory")
        if _has_run(run_dir) and not overwrite and not child:
            raise AstroclrError(f"output directory {run_dir} already holds a run; choose another "
                                f"--out, or pass --overwrite to replace it or --resume to continue it")

    galaxies, model, pipeline = _build(registry, cfg)

    if resume is None and not child:
        if overwrite and run_dir.exists():
            for name in _RUN_FILES:
                (run_dir / name).unlink(missing_ok=True)
            for name in _RUN_DIRS:
                shutil.rmtree(run_dir / name, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CONFIG_FILE).write_text(cfgmod.to_toml(cfg))
    state: dict[str, Any] = {}
    if not child:
        state = _initial_state(registry, cfg, galaxies) if resume is None else open_run(run_dir).state
        state["status"] = "training"
        _write_json(run_dir / STATE_FILE, state)

    from astroclr.train import fit

    summary = fit(model, galaxies, cfg["train"], cfg["run"]["seed"], run_dir, progress, ckpt_path)
    if child or summary["global_rank"] != 0:  # rank 0 alone embeds, evaluates and writes
        return Run(run_dir, cfg, state)
    _save_encoder(run_dir / MODEL_FILE, model.encoder)
    state.update(status="trained", train=summary)
    _write_json(run_dir / STATE_FILE, state)

    representations = _embed_run(model.encoder, galaxies, cfg, progress, run_dir)
    from astroclr.embed import write_embeddings

    write_embeddings(run_dir / EMBEDDINGS_FILE, galaxies, representations)
    state["status"] = "embedded"
    _write_json(run_dir / STATE_FILE, state)

    # A private in-memory copy: the memory map is read-only and evaluators may work in place.
    return _evaluate(registry, cfg, run_dir, galaxies, np.array(representations), pipeline, state,
                     progress)


def _build(registry: "Registry", cfg: Mapping[str, Any]) -> tuple["Galaxies", Any, Any]:
    """Load data and build model and augmentations; raises before anything is written."""
    import lightning as L

    from astroclr.augment import pipeline_from_config
    from astroclr.model import SimCLRModel
    from astroclr.train import resolve_accelerator

    from astroclr.train import check_trainer_options

    L.seed_everything(cfg["run"]["seed"], workers=True, verbose=False)
    check_trainer_options(cfg["train"])
    galaxies = load_dataset(registry, cfg)
    pipeline = pipeline_from_config(registry, galaxies.survey, cfg["augment"])
    pipeline.check(galaxies.images, cfg["run"]["seed"])
    backbone = build_backbone(registry, cfg, len(galaxies.bands), galaxies.image_size)
    t = cfg["train"]
    on_gpu = resolve_accelerator(t["accelerator"]) in ("gpu", "cuda")
    model = SimCLRModel(backbone, pipeline, t["representation_dim"], t["projection_hidden_dim"],
                        t["projection_dim"], t["temperature"], t["lr"], t["weight_decay"],
                        t["warmup_fraction"], seed=cfg["run"]["seed"], channels_last=on_gpu)
    if on_gpu:
        import torch

        model = model.to(memory_format=torch.channels_last)
    return galaxies, model, pipeline


def load_dataset(registry: "Registry", cfg: Mapping[str, Any]) -> "Galaxies":
    from astroclr.data import Galaxies

    spec = registry.get("dataset", cfg["run"]["dataset"])
    galaxies = spec.load(**cfg["dataset"])
    if not isinstance(galaxies, Galaxies):
        raise AstroclrError(f"dataset {spec.name!r} returned {type(galaxies).__name__}, not Galaxies")
    return galaxies


def _initial_state(registry: "Registry", cfg: Mapping[str, Any], galaxies: "Galaxies") -> dict:
    import astroclr

    return {
        "astroclr_version": astroclr.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packages": _versions(registry),
        "survey": galaxies.survey.to_dict(),
        "preprocessing": galaxies.preprocessing.to_dict(),
        "bands": list(galaxies.bands),
        "image_size": galaxies.image_size,
        "raw_size": galaxies.raw_size,
        "n_galaxies": len(galaxies),
        "label_names": list(galaxies.label_names) if galaxies.label_names else None,
        "dataset": cfg["run"]["dataset"],
        "backbone": cfg["run"]["backbone"],
    }


def _save_encoder(path: Path, encoder: "torch.nn.Module") -> None:
    import torch

    tmp = path.with_name(path.name + ".partial")
    torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, tmp)
    os.replace(tmp, path)


def _device(cfg: Mapping[str, Any]) -> str:
    from astroclr.train import resolve_accelerator

    return "cuda" if resolve_accelerator(cfg["train"]["accelerator"]) in ("gpu", "cuda") else "cpu"


def _embed_run(module: Any, galaxies: "Galaxies", cfg: Mapping[str, Any], progress: bool,
               run_dir: Path) -> np.ndarray:
    """Representations of every galaxy, streamed in chunks to a resumable memory-mapped file,
    split across all GPUs when there are several."""
    import torch

    from astroclr.embed import embed_to_npy
    from astroclr.progress import step

    device = _device(cfg)
    n_gpu = torch.cuda.device_count() if device == "cuda" else 0
    devices = [f"cuda:{i}" for i in range(n_gpu)] if n_gpu > 1 else None
    with step("embedding", total=len(galaxies), enabled=progress) as advance:
        return embed_to_npy(module, galaxies.images, run_dir / "checkpoints" / "representations.npy",
                            cfg["train"]["embed_batch_size"], device, channels_last=device == "cuda",
                            advance=advance, devices=devices)


def _evaluate(registry: "Registry", cfg: Mapping[str, Any], run_dir: Path, galaxies: "Galaxies",
              representations: np.ndarray, pipeline: Any, state: dict, progress: bool) -> Run:
    from astroclr.evaluate import EvalContext, run_evaluators
    from astroclr.progress import console
    from astroclr.report import write_metrics, write_report

    device = _device(cfg)

    def fresh_backbone() -> Any:
        # Evaluators seed torch themselves before building (untrained's init_seed, cnn per seed).
        return build_backbone(registry, cfg, len(galaxies.bands), galaxies.image_size)

    def embed_with(module: Any) -> np.ndarray:
        from astroclr.embed import embed_images

        return embed_images(module, galaxies.images, cfg["train"]["embed_batch_size"], device)

    r = cfg["run"]
    context = EvalContext(galaxies=galaxies, representations=representations,
                          figures_dir=run_dir / "figures", label_column=r["label_column"],
                          seeds=tuple(r["eval_seeds"]), train_sizes=tuple(r["train_sizes"]),
                          test_fraction=r["test_fraction"], build_backbone=fresh_backbone,
                          embed_with=embed_with, augment=pipeline, device=device, config=cfg)
    start = time.perf_counter()
    results = run_evaluators(registry, r["evaluators"], cfg["evaluate"], context,
                             on_start=(lambda n: console.print(f"evaluating: {n}")) if progress
                             else None)
    state["evaluate_seconds"] = round(time.perf_counter() - start, 2)
    state["status"] = "complete"
    summary = _summary(cfg, state)
    write_metrics(run_dir, summary, results)
    write_report(run_dir, summary, results)
    _write_json(run_dir / STATE_FILE, state)
    if progress:
        console.print(f"run complete: {run_dir / 'report.html'}")
    return Run(run_dir, dict(cfg), state)


def _summary(cfg: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    train = state.get("train", {})
    return {
        "title": f"astroclr run: {cfg['run']['dataset']} / {cfg['run']['backbone']}",
        "dataset": cfg["run"]["dataset"],
        "backbone": cfg["run"]["backbone"],
        "n_galaxies": state.get("n_galaxies"),
        "bands": state.get("bands"),
        "image_size": state.get("image_size"),
        "epochs": train.get("epochs"),
        "steps": train.get("steps"),
        "train_seconds": train.get("train_seconds"),
        "final_loss": train.get("final_loss"),
        "images_per_second": train.get("images_per_second"),
        "device": train.get("device"),
        "evaluate_seconds": state.get("evaluate_seconds"),
        "survey": state.get("survey"),
        "config": cfg,
    }


def evaluate_run(run_dir: str | Path, evaluators: Sequence[str] | None = None,
                 sets: Sequence[str] = (), progress: bool = True) -> Run:
    """Re-run evaluators on an existing run's stored embeddings, without retraining."""
    from astroclr.plugins import get_registry

    registry = get_registry()
    existing = open_run(run_dir)
    raw = cfgmod.merge(existing.config, {"run": {"evaluators": list(evaluators)}} if evaluators else {})
    for assignment in sets:
        raw = cfgmod.merge(raw, cfgmod.parse_set(assignment))
    if evaluators:  # parameters of evaluators no longer listed would be rejected as stray
        raw["evaluate"] = {k: v for k, v in raw.get("evaluate", {}).items() if k in evaluators}
    cfg = cfgmod.resolve(raw, registry)
    table = existing.embeddings()
    galaxies = load_dataset(registry, cfg)
    if len(table) != len(galaxies) or not np.array_equal(np.asarray(table["id"]), galaxies.ids):
        raise AstroclrError(f"{existing.dir / EMBEDDINGS_FILE} does not match the dataset "
                            f"{cfg['run']['dataset']!r} it was made from (ids differ)")
    from astroclr.augment import pipeline_from_config

    pipeline = pipeline_from_config(registry, galaxies.survey, cfg["augment"])
    representations = np.asarray(table["representation"], dtype=np.float32)
    return _evaluate(registry, cfg, existing.dir, galaxies, representations, pipeline,
                     dict(existing.state), progress)


class TrainedModel:
    """A trained encoder with the preprocessing its run used.

    ``embed(images)`` takes raw cutouts of the trained bands, (N, C, H, W) or (C, H, W), as the
    dataset reads them (before binning and normalisation), and returns (N, D) representations.
    """

    def __init__(self, encoder: Any, bands: Sequence[str], preprocessing: Any, image_size: int,
                 device: str = "cpu", batch_size: int = 512) -> None:
        self.encoder = encoder.eval().to(device)
        self.bands = tuple(bands)
        self.preprocessing = preprocessing
        self.image_size = image_size
        self.device = device
        self.batch_size = batch_size

    def embed(self, images: Any) -> np.ndarray:
        from astroclr.embed import embed_images

        if hasattr(images, "detach"):
            images = images.detach().cpu().numpy()
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise AstroclrError(f"embed: expected images (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != len(self.bands):
            raise AstroclrError(f"embed: the model was trained on {len(self.bands)} bands "
                                f"({', '.join(self.bands)}), got images with {x.shape[1]}")
        x = self.preprocessing.apply(x)
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise AstroclrError(
                f"embed: after preprocessing (bin {self.preprocessing.bin}) the images are "
                f"{x.shape[-2]}x{x.shape[-1]} px, but the model was trained on "
                f"{self.image_size}x{self.image_size}")
        return embed_images(self.encoder, x, self.batch_size, self.device)


def load(run_dir: str | Path, device: str | None = None) -> TrainedModel:
    """Load the trained encoder of a run directory for embedding new images."""
    import torch

    from astroclr.model import Encoder
    from astroclr.plugins import get_registry
    from astroclr.preprocess import Preprocessing

    existing = open_run(run_dir)
    path = existing.dir / MODEL_FILE
    if not path.is_file():
        raise AstroclrError(f"run {existing.dir} has no trained model ({MODEL_FILE}); training did "
                            f"not finish: resume it with astroclr run --resume {existing.dir}")
    registry = get_registry()
    cfg = cfgmod.resolve(existing.config, registry)
    state = existing.state
    backbone = build_backbone(registry, cfg, len(state["bands"]), state["image_size"])
    encoder = Encoder(backbone, cfg["train"]["representation_dim"])
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
        encoder.load_state_dict(weights)
    except Exception as exc:
        raise AstroclrError(f"{path} is corrupt or does not match the run's backbone: {exc}") from exc
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return TrainedModel(encoder, state["bands"], Preprocessing(**state["preprocessing"]),
                        state["image_size"], device, cfg["train"]["embed_batch_size"])
