"""The ``astroclr`` command line: a thin layer over the Python API.

Heavy libraries (torch, Lightning, astropy, umap) are imported inside the commands, so
``astroclr --help`` answers instantly.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

app = typer.Typer(
    help="Self-supervised (SimCLR) representations of galaxy images, and an honest measure of "
         "how good they are.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
augment_app = typer.Typer(help="Inspect the augmentation pipeline.", no_args_is_help=True)
app.add_typer(augment_app, name="augment")

SetOpt = typer.Option(None, "--set", "-s", metavar="KEY=VALUE",
                      help="Set any config key, e.g. --set augment.psf.p=0.3 (repeatable).")
ConfigOpt = typer.Option(None, "--config", "-c", help="A TOML config file.", exists=False)
PresetOpt = typer.Option(None, "--preset", "-p", help="A shipped configuration: default, long, gpu "
                         "(see astroclr config --presets).")


def _err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report user errors as one line and exit 2, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from astroclr.specs import AstroclrError

        try:
            return fn(*args, **kwargs)
        except AstroclrError as exc:
            _err(str(exc))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            _err("interrupted; a run can be continued with astroclr run --resume RUN_DIR")
            raise typer.Exit(130) from None

    return wrapper


@app.command("run")
@friendly
def run_cmd(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset plugin (default sdss: the embedded sample)."),
    backbone: Optional[str] = typer.Option(None, "--backbone", "-b", help="Backbone plugin, e.g. resnet18, smallcnn."),
    config: Optional[Path] = ConfigOpt,
    preset: Optional[str] = PresetOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/<time>_<dataset>_<backbone>)."),
    epochs: Optional[int] = typer.Option(None, help="Passes over the dataset."),
    time_budget: Optional[str] = typer.Option(None, "--time-budget", help="Wall-clock training budget, e.g. 8m, 1h; the schedule is fitted to it."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per batch."),
    seed: Optional[int] = typer.Option(None, help="Seed for weights, data order, augmentations, splits."),
    accelerator: Optional[str] = typer.Option(None, help="Lightning accelerator: auto, cpu, gpu."),
    devices: Optional[str] = typer.Option(None, help="Lightning devices: a count, '0,1', or auto."),
    strategy: Optional[str] = typer.Option(None, help="Lightning strategy: auto, ddp, ..."),
    num_nodes: Optional[int] = typer.Option(None, "--num-nodes", help="Nodes for distributed training."),
    evaluators: Optional[str] = typer.Option(None, help="Comma-separated evaluators to run after training."),
    sets: Optional[List[str]] = SetOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train SimCLR, embed every galaxy, evaluate, and write a report."""
    from astroclr.runner import run

    result = run(
        config, out=out, overwrite=overwrite, resume=resume, progress=not quiet, sets=sets or (),
        preset=preset,
        dataset=dataset, backbone=backbone, epochs=epochs, time_budget=time_budget,
        batch_size=batch_size, seed=seed, accelerator=accelerator, devices=devices,
        strategy=strategy, num_nodes=num_nodes,
        evaluators=[e.strip() for e in evaluators.split(",") if e.strip()] if evaluators else None,
    )
    typer.echo(f"run directory: {result.dir}")


@app.command("evaluate")
@friendly
def evaluate_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    evaluator: Optional[List[str]] = typer.Option(None, "--evaluator", "-e", help="Evaluator to run (repeatable; default: the run's)."),
    sets: Optional[List[str]] = SetOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Re-run evaluators on an existing run, without retraining."""
    from astroclr.runner import evaluate_run

    result = evaluate_run(run_dir, evaluator or None, sets or (), progress=not quiet)
    typer.echo(f"report: {result.dir / 'report.html'}")


@app.command("similar")
@friendly
def similar_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    objid: str = typer.Option(..., "--id", help="Catalogue id of the query galaxy."),
    k: int = typer.Option(8, "-k", min=1, help="Number of neighbours."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Montage PNG (default RUN/figures/similar_<id>.png)."),
) -> None:
    """Find the galaxies most similar to one galaxy in representation space; write a montage."""
    from astroclr.runner import open_run
    from astroclr.similar import find_similar, write_montage

    existing = open_run(run_dir)
    neighbours = find_similar(run_dir, objid, k)
    for nid, dist in neighbours:
        typer.echo(f"{nid}\t{dist:.4f}")
    path = out or existing.dir / "figures" / f"similar_{objid}.png"
    write_montage(run_dir, objid, k, path, existing.galaxies())
    typer.echo(f"montage: {path}")


@app.command("plugins")
@friendly
def plugins_cmd() -> None:
    """List every dataset, augmentation, backbone and evaluator, with the package providing it."""
    from rich.console import Console
    from rich.table import Table

    from astroclr.plugins import get_registry

    table = Table("kind", "name", "package", "version", "description")
    for part in get_registry().all_parts():
        table.add_row(part.kind, part.spec.name, part.package, part.version, part.spec.description)
    Console(width=max(120, Console().width)).print(table)


@app.command("config")
@friendly
def config_cmd(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset plugin."),
    backbone: Optional[str] = typer.Option(None, "--backbone", "-b", help="Backbone plugin."),
    config: Optional[Path] = ConfigOpt,
    preset: Optional[str] = PresetOpt,
    sets: Optional[List[str]] = SetOpt,
    list_presets: bool = typer.Option(False, "--presets", help="List the shipped presets."),
) -> None:
    """Print the resolved configuration (every default filled in) as TOML."""
    from astroclr import config as cfgmod
    from astroclr.plugins import get_registry
    from astroclr.runner import assemble_config

    if list_presets:
        for name, path in cfgmod.presets().items():
            first = path.read_text().splitlines()[0].lstrip("# ").strip()
            typer.echo(f"{name}\t{first}")
        return
    raw = assemble_config(config, sets or (), preset, dataset=dataset, backbone=backbone)
    typer.echo(cfgmod.to_toml(cfgmod.resolve(raw, get_registry())), nl=False)


@app.command("prepare")
@friendly
def prepare_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Directory of the prepared dataset."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset plugin."),
    config: Optional[Path] = ConfigOpt,
    sets: Optional[List[str]] = SetOpt,
    workers: Optional[int] = typer.Option(None, help="Parallel workers (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Preprocess a dataset once into a memory-mapped prepared dataset (resumable)."""
    from astroclr import config as cfgmod
    from astroclr.plugins import get_registry
    from astroclr.prepared import prepare_dataset
    from astroclr.runner import assemble_config

    registry = get_registry()
    cfg = cfgmod.resolve(assemble_config(config, sets or (), dataset=dataset), registry)
    summary = prepare_dataset(registry, cfg["run"]["dataset"], cfg["dataset"], out,
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


@augment_app.command("preview")
@friendly
def augment_preview_cmd(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset plugin."),
    config: Optional[Path] = ConfigOpt,
    sets: Optional[List[str]] = SetOpt,
    out: Path = typer.Option(Path("augmentations.png"), "--out", "-o", help="PNG to write."),
    n_galaxies: int = typer.Option(4, "--galaxies", min=1, max=16, help="Galaxies (rows)."),
    n_views: int = typer.Option(4, "--views", min=1, max=12, help="Composed views per galaxy."),
    seed: int = typer.Option(0, help="Seed of the augmentations and of the galaxies shown."),
) -> None:
    """Write a figure of galaxies, each augmentation alone, and composed views."""
    from astroclr import config as cfgmod
    from astroclr.plugins import get_registry
    from astroclr.preview import write_preview
    from astroclr.runner import assemble_config, load_dataset

    registry = get_registry()
    cfg = cfgmod.resolve(assemble_config(config, sets or (), dataset=dataset), registry)
    galaxies = load_dataset(registry, cfg)
    params = {k: v for k, v in cfg["augment"].items() if k != "pipeline"}
    path = write_preview(galaxies, cfg["augment"]["pipeline"], params, out, seed=seed,
                         n_galaxies=n_galaxies, n_views=n_views, registry=registry)
    typer.echo(f"preview: {path}")


_plugin_commands_added = False


def _add_plugin_commands() -> None:
    """Sub-commands contributed by plugins (e.g. ``astroclr sdss download``), added once."""
    import warnings

    global _plugin_commands_added
    if _plugin_commands_added:
        return
    _plugin_commands_added = True

    from astroclr.plugins import PluginError, get_registry

    try:
        parts = get_registry().parts("command")
    except PluginError as exc:
        _err(str(exc))
        raise SystemExit(2) from None
    taken = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for name, part in parts.items():
        if name in taken:
            warnings.warn(f"astroclr: plugin command {name!r} from {part.package!r} clashes with "
                          f"a built-in command and is skipped", RuntimeWarning, stacklevel=1)
            continue
        try:
            sub = part.spec.make_app()
        except Exception as exc:
            warnings.warn(f"astroclr: plugin command {name!r} from {part.package!r} failed: {exc}",
                          RuntimeWarning, stacklevel=1)
            continue
        app.add_typer(sub, name=name, help=part.spec.description)


def main(argv: Optional[List[str]] = None) -> Any:
    """Entry point of the ``astroclr`` script."""
    _add_plugin_commands()
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="astroclr")


if __name__ == "__main__":  # pragma: no cover
    main()
