"""Commands that look at data and results: similar, augment preview, plugins."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from astroclr.cli.common import ConfigOpt, ModelOpt, SetOpt, app, augment_app, friendly


@app.command("similar")
@friendly(interruptible=True)
def similar_cmd(
    run_dir: Optional[Path] = typer.Argument(
        None, metavar="RUN_DIR", help="A run directory or model package (or --model NAME): "
        "its model embeds --image files, its embeddings are searched (unless --against)."),
    ids: Optional[List[str]] = typer.Option(None, "--id", help="Id of a query galaxy of the run "
                                            "(repeatable)."),
    images: Optional[List[Path]] = typer.Option(
        None, "--image", help="A query image, read as the run's dataset plugin reads its own "
        "(sdss: a SkyServer JPEG, cropped and resized as the run's; a FITS cutout) (repeatable)."),
    table: Optional[Path] = typer.Option(None, "--table", help="Query by every row of an "
                                         "embeddings table (id + representation columns)."),
    against: Optional[Path] = typer.Option(None, "--against", help="Search this embeddings "
                                           "table (e.g. from astroclr embed) instead of the run's."),
    k: int = typer.Option(8, "-k", min=1, help="Number of neighbours."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Montage PNG (default RUN/figures/similar_<query>.png)."),
    results: Optional[Path] = typer.Option(None, "--results", help="Table of the neighbours, "
                                           ".csv or .fits (default: the montage's path, .csv)."),
    model: Optional[str] = ModelOpt,
) -> None:
    """Find the galaxies most similar to galaxies of the run, to image files or to a table of
    representations; write a montage and a table of neighbours with cosine distances."""
    from astroclr.runs.package import model_source
    from astroclr.session.similar import MONTAGE_QUERIES, similar

    if out is not None:
        _check_image_format(out)
    found = similar(model_source(run_dir, model), ids=ids or (), images=images or (), table=table,
                    against=against, k=k, out=out, results=results)
    for path, n in found.skipped.items():
        typer.echo(f"skipped {n} rows of {path} whose representation holds NaN or inf")
    t = found.table
    if found.queries == 1:
        for nid, dist in zip(t["id"], t["distance"]):
            typer.echo(f"{nid}\t{dist:.4f}")
    else:
        queries = list(dict.fromkeys(str(q) for q in t["query"]))[:MONTAGE_QUERIES]
        for q, nid, dist in zip(t["query"], t["id"], t["distance"]):
            if str(q) in queries:
                typer.echo(f"{q}\t{nid}\t{dist:.4f}")
        if found.queries > len(queries):
            typer.echo(f"... {found.queries - len(queries)} more queries in the table")
    typer.echo(f"montage: {found.montage}")
    typer.echo(f"table: {found.results}")


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
    import astroclr.config as cfgmod
    from astroclr.data.preview import write_preview
    from astroclr.files import check_writable
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import load_dataset

    registry = get_registry()
    cfg = cfgmod.resolve(cfgmod.assemble_config(config, sets or (), dataset=dataset), registry)
    check_writable(out, "--out", is_dir=False)  # before the dataset is loaded
    _check_image_format(out)
    galaxies = load_dataset(registry, cfg)
    path = write_preview(galaxies, cfg.pipeline, cfg.augment_params, out, seed=seed,
                         n_galaxies=n_galaxies, n_views=n_views, registry=registry)
    typer.echo(f"preview: {path}")


def _check_image_format(path: Path) -> None:
    """A one-line error for a suffix matplotlib cannot write (rather than its traceback later)."""
    from matplotlib.backend_bases import FigureCanvasBase

    from astroclr.plugin.specs import AstroclrError

    suffix = path.suffix.lower().lstrip(".")
    known = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in known:
        raise AstroclrError(f"cannot write {path}: .{suffix} is not an image format matplotlib "
                            f"writes ({', '.join(sorted(known))})")


@app.command("plugins")
@friendly
def plugins_cmd() -> None:
    """List every dataset, augmentation, backbone, method, evaluator, command and model, with
    its package."""
    from rich.console import Console
    from rich.table import Table

    from astroclr.plugin.registry import get_registry

    table = Table("kind", "name", "package", "version", "description")
    for part in get_registry().all_parts():
        table.add_row(part.kind, part.spec.name, part.package, part.version, part.spec.description)
    Console(width=max(120, Console().width)).print(table)
