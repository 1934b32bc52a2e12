"""Commands that make or re-evaluate runs: run, evaluate, config, prepare."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from astroclr.cli.common import (
    AcceleratorOpt,
    ConfigOpt,
    DevicesOpt,
    NodesOpt,
    PresetOpt,
    QuietOpt,
    SetOpt,
    StrategyOpt,
    app,
    friendly,
    schema_option,
)


@app.command("run")
@friendly
def run_cmd(
    dataset: Optional[str] = schema_option("run.dataset", "--dataset", "-d"),
    backbone: Optional[str] = schema_option("run.backbone", "--backbone", "-b"),
    method: Optional[str] = schema_option("train.method", "--method", "-m"),
    config: Optional[Path] = ConfigOpt,
    preset: Optional[str] = PresetOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Run directory (default runs/<time>_<dataset>_<backbone>)."),
    epochs: Optional[int] = schema_option("train.epochs", "--epochs"),
    time_budget: Optional[str] = schema_option("train.time_budget", "--time-budget"),
    batch_size: Optional[int] = schema_option("train.batch_size", "--batch-size"),
    seed: Optional[int] = schema_option("run.seed", "--seed"),
    accelerator: Optional[str] = AcceleratorOpt,
    devices: Optional[str] = DevicesOpt,
    strategy: Optional[str] = StrategyOpt,
    num_nodes: Optional[int] = NodesOpt,
    evaluators: Optional[str] = schema_option("run.evaluators", "--evaluators",
                                              extra="comma-separated"),
    sets: Optional[List[str]] = SetOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    resume: Optional[Path] = typer.Option(None, "--resume",
                                          help="Continue an interrupted run directory."),
    logger: Optional[str] = schema_option("train.logger", "--logger"),
    quiet: bool = QuietOpt,
) -> None:
    """Train a self-supervised method (SimCLR by default), embed every galaxy, evaluate, and
    write a report."""
    from astroclr.session.runner import run

    result = run(
        config, out=out, overwrite=overwrite, resume=resume, progress=not quiet, sets=sets or (),
        preset=preset,
        dataset=dataset, backbone=backbone, method=method, epochs=epochs, time_budget=time_budget,
        batch_size=batch_size, seed=seed, accelerator=accelerator, devices=devices,
        strategy=strategy, num_nodes=num_nodes, logger=logger,
        evaluators=[e.strip() for e in evaluators.split(",") if e.strip()] if evaluators else None,
    )
    typer.echo(f"run directory: {result.dir}")


@app.command("evaluate")
@friendly(interruptible=True)
def evaluate_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    evaluator: Optional[List[str]] = typer.Option(None, "--evaluator", "-e",
                                                  help="Evaluator to run (repeatable; default: the run's)."),
    sets: Optional[List[str]] = SetOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Re-run evaluators on an existing run, without retraining."""
    from astroclr.session.runner import evaluate_run

    result = evaluate_run(run_dir, evaluator or None, sets or (), progress=not quiet)
    typer.echo(f"report: {result.rundir.report_html}")


@app.command("config")
@friendly
def config_cmd(
    dataset: Optional[str] = schema_option("run.dataset", "--dataset", "-d"),
    backbone: Optional[str] = schema_option("run.backbone", "--backbone", "-b"),
    config: Optional[Path] = ConfigOpt,
    preset: Optional[str] = PresetOpt,
    sets: Optional[List[str]] = SetOpt,
    list_presets: bool = typer.Option(False, "--presets", help="List the shipped presets."),
) -> None:
    """Print the resolved configuration (every default filled in) as TOML."""
    import astroclr.config as cfgmod
    from astroclr.plugin.registry import get_registry

    if list_presets:
        for name, path in cfgmod.presets().items():
            first = path.read_text().splitlines()[0].lstrip("# ").strip()
            typer.echo(f"{name}\t{first}")
        return
    raw = cfgmod.assemble_config(config, sets or (), preset, dataset=dataset, backbone=backbone)
    typer.echo(cfgmod.to_toml(cfgmod.resolve(raw, get_registry())), nl=False)


@app.command("prepare")
@friendly
def prepare_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Directory of the prepared dataset."),
    dataset: Optional[str] = schema_option("run.dataset", "--dataset", "-d"),
    config: Optional[Path] = ConfigOpt,
    sets: Optional[List[str]] = SetOpt,
    workers: Optional[int] = typer.Option(None, help="Parallel workers (default: all cores)."),
    quiet: bool = QuietOpt,
) -> None:
    """Preprocess a dataset once into a memory-mapped prepared dataset (resumable)."""
    import astroclr.config as cfgmod
    from astroclr.data.prepare import prepare_dataset
    from astroclr.plugin.registry import get_registry

    registry = get_registry()
    cfg = cfgmod.resolve(cfgmod.assemble_config(config, sets or (), dataset=dataset), registry)
    summary = prepare_dataset(registry, cfg.run.dataset, cfg.dataset, out,
                              workers=workers, progress=not quiet)
    typer.echo(f"prepared {summary.get('kept')} galaxies into {out} "
               f"({summary.get('galaxies_per_s', 0):,.0f} galaxies/s)")
    skipped = summary.get("skipped") or {}
    if skipped:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(skipped.items()))
        typer.echo(f"skipped {summary.get('skipped_total', sum(skipped.values()))} ({reasons}); "
                   f"details in {out / 'skipped.csv'}")
    if summary.get("filled_pixels"):
        typer.echo(f"filled {summary['filled_pixels']} non-finite pixels")
