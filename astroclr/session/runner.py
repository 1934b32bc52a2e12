"""One run: configuration → training → embeddings → evaluation → report. The Python API's heart.

The run directory's layout and every write to it belong to :class:`astroclr.runs.rundir.RunDir`.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

import astroclr.config as cfgmod
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.build import build_backbone, build_training, load_dataset
from astroclr.runs.rundir import Run, RunDir, open_run

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies
    from astroclr.data.prepared import Skip
    from astroclr.evaluate.context import EvalContext
    from astroclr.plugin.registry import Registry
    from astroclr.resolved import Config


def default_run_dir(cfg: "Config", root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    return Path(root) / f"{stamp}_{cfg.run.dataset}_{cfg.run.backbone}"


def _versions(registry: "Registry") -> dict[str, str]:
    out = {}
    for part in registry.all_parts():
        out.setdefault(part.package, part.version)
    return out


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
    """Train the configured self-supervised method (SimCLR by default), embed every galaxy, run
    the evaluators and write the report.

    ``config`` is a TOML path or a mapping of tables; ``preset`` names a shipped configuration
    (``astroclr config --presets``); ``sets`` are ``"table.key=value"`` assignments; keyword
    shortcuts set core options (``dataset="sdss"``, ``epochs=2``, ``time_budget="5m"``, ...).
    ``out`` is the run directory (default ``runs/<time>_...``); an existing run there is refused
    unless ``overwrite`` (replace it) or ``resume`` is given.

    Everything is validated before anything is written; a failure leaves existing files intact.
    """
    from astroclr.plugin.registry import get_registry
    from astroclr.train.launch import launched_rank

    registry = get_registry()
    # Lightning's ddp launcher and SLURM start this same call once per process: only the first
    # process creates, checks and writes the run directory.
    child = launched_rank() != 0
    if resume is not None:
        from astroclr.session.resume import prepare_resume

        rundir, cfg, ckpt_path = prepare_resume(RunDir(resume), config, sets, overrides, registry)
    else:
        cfg = cfgmod.resolve(cfgmod.assemble_config(config, sets, preset, **overrides), registry)
        if out is None and cfg.train.distributed:
            raise AstroclrError("give --out for a run on several devices or nodes, so that every "
                                "process writes to the same run directory")
        rundir = RunDir(out if out is not None else default_run_dir(cfg))
        ckpt_path = None
        if rundir.path.exists() and not rundir.path.is_dir():
            raise AstroclrError(f"output {rundir.path} exists and is not a directory")
        if rundir.holds_run() and not overwrite and not child:
            raise AstroclrError(_holds_run_message(rundir))
    if not child:  # before any data is loaded: a bad output costs seconds, not a training run
        rundir.check_writable("the run directory" if resume is not None else "--out")

    with rundir.lock(enabled=not child):
        if resume is None and not overwrite and not child and rundir.holds_run():
            raise AstroclrError(_holds_run_message(rundir))  # written meanwhile by another run
        return _train_and_evaluate(registry, cfg, rundir, resume, overwrite, child, ckpt_path,
                                   progress)


def _holds_run_message(rundir: RunDir) -> str:
    return (f"output directory {rundir.path} already holds a run; choose another --out, or pass "
            f"--overwrite to replace it or --resume to continue it")


def _train_and_evaluate(registry: "Registry", cfg: "Config", rundir: RunDir, resume: Any,
                        overwrite: bool, child: bool, ckpt_path: str | None, progress: bool) -> Run:
    galaxies, model, pipeline = build_training(registry, cfg)

    if resume is None and not child:
        if overwrite and rundir.path.exists():
            rundir.clear()
        rundir.path.mkdir(parents=True, exist_ok=True)
        rundir.write_config(cfg)
        skips = dataset_skips(galaxies)
        if skips is not None:
            rundir.write_skipped(skips)
    state: dict[str, Any] = {}
    if not child:
        state = _initial_state(registry, cfg, galaxies) if resume is None else rundir.read_state()
        state["status"] = "training"
        rundir.write_state(state)

    from astroclr.train.trainer import fit

    summary = fit(model, galaxies, cfg.train, cfg.run.seed, rundir, progress, ckpt_path)
    first = not child and summary["global_rank"] == 0  # it alone writes
    if first:
        rundir.save_encoder(model.trained_encoder())
        state.update(status="trained", train=summary)
        rundir.write_state(state)

    # Every process of the run embeds its share of the galaxies (the same weights everywhere:
    # tests/test_ddp.py); the first merges the shares and alone goes on.
    representations = _embed_run(model.trained_encoder(), galaxies, cfg, progress, rundir,
                                 int(summary["world_size"]))
    if representations is None or not first:
        return Run(rundir, cfg.tables(), state)
    rundir.write_embeddings(galaxies, representations)
    _fit_anomaly_scorer(rundir, galaxies, representations, cfg.run.seed)
    state["status"] = "embedded"
    rundir.write_state(state)
    representations = np.array(representations)
    from astroclr.train.infer import remove_work

    remove_work(rundir.embedding_work)  # the table holds them now

    # A private in-memory copy: the memory map is read-only and evaluators may work in place.
    return _evaluate(registry, cfg, rundir, galaxies, representations, pipeline, state, progress)


def dataset_skips(galaxies: "Galaxies") -> "list[Skip] | None":
    """The galaxies a dataset could not use (``catalog.meta["skips"]``: a list of
    :class:`~astroclr.data.prepared.Skip`), or None when the dataset does not say."""
    skips = galaxies.catalog.meta.get("skips")
    return None if skips is None else list(skips)


def _initial_state(registry: "Registry", cfg: "Config", galaxies: "Galaxies") -> dict:
    from astroclr.version import __version__

    return {
        "astroclr_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packages": _versions(registry),
        "survey": galaxies.survey.to_dict(),
        "preprocessing": galaxies.preprocessing.to_dict(),
        "bands": list(galaxies.bands),
        "image_size": galaxies.image_size,
        "raw_size": galaxies.raw_size,
        "n_galaxies": len(galaxies),
        "label_names": list(galaxies.label_names) if galaxies.label_names else None,
        "dataset": cfg.run.dataset,
        "backbone": cfg.run.backbone,
        "method": cfg.train.method,
        **_skip_counts(galaxies),
    }


def _skip_counts(galaxies: "Galaxies") -> dict[str, Any]:
    from astroclr.data.prepared import reason_counts

    skips = dataset_skips(galaxies)
    if skips is None:
        return {}
    return {"skipped": reason_counts(skips), "skipped_total": len(skips)}


def _embed_run(module: Any, galaxies: "Galaxies", cfg: "Config", progress: bool,
               rundir: RunDir, world: int) -> np.ndarray | None:
    """Representations of every galaxy, resumable, on the run's devices and processes; None
    in every process but the first."""
    from astroclr.train.infer import infer

    # every process needs a batch: a small dataset on many devices takes smaller batches
    batch = max(1, min(cfg.train.embed_batch_size, -(-len(galaxies) // max(1, world))))
    return infer(module, galaxies.images, galaxies.ids, rundir.embedding_work, cfg.train, batch,
                 progress=progress)


def _fit_anomaly_scorer(rundir: RunDir, galaxies: "Galaxies", representations: np.ndarray,
                        seed: int) -> None:
    """Fit the run's anomaly scorer once, store it, and add every galaxy's ``anomaly_score``
    to the embeddings table: ``embed`` and ``predict`` score new catalogues against it."""
    from astroclr.evaluate.anomaly import AnomalyScorer

    scorer = AnomalyScorer.fit(representations, galaxies.images, seed=seed)
    scorer.save(rundir.anomaly)
    rundir.add_columns({"anomaly_score": scorer.score(representations, galaxies.images)["score"]})


def evaluation_context(registry: "Registry", cfg: "Config", rundir: RunDir,
                       galaxies: "Galaxies", representations: np.ndarray,
                       pipeline: Any) -> "EvalContext":
    """The context every evaluator of a run gets: its galaxies, representations, splits,
    a fresh backbone of its kind, its trained encoder and augmentations."""
    from astroclr.evaluate.context import EvalContext, method_title

    device = cfg.train.device

    def fresh_backbone() -> Any:
        # Evaluators seed torch themselves before building (untrained's init_seed, cnn per seed).
        return build_backbone(registry, cfg, len(galaxies.bands), galaxies.image_size)

    def embed_with(module: Any) -> np.ndarray:
        from astroclr.evaluate.embed import embed_images

        return embed_images(module, galaxies.images, cfg.train.embed_batch_size, device)

    def trained_encoder() -> Any:
        from astroclr.session.trained import load

        return load(rundir.path, device=device).encoder

    r = cfg.run
    return EvalContext(galaxies=galaxies, representations=representations,
                       figures_dir=rundir.figures, label_column=r.label_column,
                       seeds=r.eval_seeds, train_sizes=r.train_sizes,
                       test_fraction=r.test_fraction, build_backbone=fresh_backbone,
                       embed_with=embed_with, augment=pipeline, device=device,
                       config=cfg.tables(), trained_encoder=trained_encoder,
                       method_title=method_title(registry.get("method", cfg.train.method)))


def _evaluate(registry: "Registry", cfg: "Config", rundir: RunDir, galaxies: "Galaxies",
              representations: np.ndarray, pipeline: Any, state: dict, progress: bool) -> Run:
    from astroclr.evaluate.context import run_evaluators
    from astroclr.progress import console
    from astroclr.session.report import write_metrics, write_report

    r = cfg.run
    context = evaluation_context(registry, cfg, rundir, galaxies, representations, pipeline)
    start = time.perf_counter()
    results = run_evaluators(registry, r.evaluators, cfg.evaluate, context,
                             on_start=(lambda n: console.print(f"evaluating: {n}")) if progress
                             else None)
    state["evaluate_seconds"] = round(time.perf_counter() - start, 2)
    # per-galaxy columns of evaluators (an anomaly score, ...) join the embeddings table
    rundir.add_columns({k: v for res in results.values() for k, v in res.columns.items()})
    state["status"] = "complete"
    summary = _summary(cfg, state)
    write_metrics(rundir, summary, results)
    write_report(rundir, summary, results)
    rundir.write_state(state)
    if progress:
        console.print(f"run complete: {rundir.report_html}")
    return Run(rundir, cfg.tables(), state)


def _summary(cfg: "Config", state: Mapping[str, Any]) -> dict[str, Any]:
    train = state.get("train", {})
    return {
        "title": f"astroclr run: {cfg.run.dataset} / {cfg.run.backbone} / {cfg.train.method}",
        "dataset": cfg.run.dataset,
        "backbone": cfg.run.backbone,
        "method": cfg.train.method,
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
        **({"skipped": state["skipped"]} if state.get("skipped") else {}),
        "survey": state.get("survey"),
        "config": cfg.tables(),
    }


def evaluate_run(run_dir: str | Path, evaluators: Sequence[str] | None = None,
                 sets: Sequence[str] = (), progress: bool = True) -> Run:
    """Re-run evaluators on an existing run's stored embeddings, without retraining."""
    from astroclr.data.augment import pipeline_from_config
    from astroclr.evaluate.context import check_targets
    from astroclr.evaluate.ids import same_ids
    from astroclr.plugin.registry import get_registry

    registry = get_registry()
    existing = open_run(run_dir)
    raw = cfgmod.merge(existing.config, {"run": {"evaluators": list(evaluators)}} if evaluators else {})
    for assignment in sets:
        part = cfgmod.parse_set(assignment)
        stray = sorted(set(part.get("evaluate", {})) - set(evaluators or ()))
        if evaluators and stray:  # dropped below with the run's own tables: say so instead
            raise AstroclrError(f"--set {assignment!r}: evaluator {stray[0]!r} is not among "
                                f"those run (--evaluator {', '.join(evaluators)})")
        raw = cfgmod.merge(raw, part)
    if evaluators:  # parameters of evaluators no longer listed would be rejected as stray
        raw["evaluate"] = {k: v for k, v in raw.get("evaluate", {}).items() if k in evaluators}
    cfg = cfgmod.resolve(raw, registry)
    ids, representations = existing.rundir.embedding_arrays()
    existing.rundir.check_writable()  # before the dataset is loaded
    with existing.rundir.lock():
        galaxies = load_dataset(registry, cfg)
        check_targets(registry, cfg.run.evaluators, cfg.evaluate, cfg.run.label_column, galaxies)
        if not same_ids(ids, galaxies.ids):
            raise AstroclrError(f"{existing.rundir.embeddings} does not match the dataset "
                                f"{cfg.run.dataset!r} it was made from (ids differ)")
        pipeline = pipeline_from_config(registry, galaxies.survey, cfg.augment)
        if "anomaly" in cfg.run.evaluators:  # refits the run's scorer (one saved by an older
            # version lacks the shift check embed and predict run against it)
            _fit_anomaly_scorer(existing.rundir, galaxies, representations, cfg.run.seed)
        return _evaluate(registry, cfg, existing.rundir, galaxies, representations, pipeline,
                         dict(existing.state), progress)


def open_evaluation(run_dir: str | Path, sets: Sequence[str] = ()) -> "EvalContext":
    """A finished run's evaluation context, read-only (nothing in the run is written): for
    measuring evaluators outside ``astroclr evaluate`` (benchmarks, notebooks)."""
    from astroclr.data.augment import pipeline_from_config
    from astroclr.evaluate.ids import same_ids
    from astroclr.plugin.registry import get_registry

    registry = get_registry()
    existing = open_run(run_dir)
    cfg = cfgmod.resolve(cfgmod.assemble_config(existing.config, sets), registry)
    ids, representations = existing.rundir.embedding_arrays()
    galaxies = load_dataset(registry, cfg)
    if not same_ids(ids, galaxies.ids):
        raise AstroclrError(f"{existing.rundir.embeddings} does not match the dataset "
                            f"{cfg.run.dataset!r} it was made from (ids differ)")
    pipeline = pipeline_from_config(registry, galaxies.survey, cfg.augment)
    return evaluation_context(registry, cfg, existing.rundir, galaxies, representations,
                              pipeline)
