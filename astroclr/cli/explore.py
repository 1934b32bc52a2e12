"""Commands that look at data and results: similar, augment preview, plugins."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from astroclr.cli.common import ConfigOpt, SetOpt, app, augment_app, friendly


@app.command("similar")
@friendly
def similar_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    objid: str = typer.Option(..., "--id", help="Catalogue id of the query galaxy."),
    k: int = typer.Option(8, "-k", min=1, help="Number of neighbours."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Montage PNG (default RUN/figures/similar_<id>.png)."),
) -> None:
    """Find the galaxies most similar to one galaxy in representation space; write a montage."""
    from astroclr.evaluate.similar import load_embeddings, montage, nearest
    from astroclr.files import check_writable
    from astroclr.session.rundir import open_run

    existing = open_run(run_dir)
    # The default name comes from the id: RunDir.figure keeps it inside figures/ whatever it holds.
    path = out or existing.rundir.figure(f"similar_{objid}")
    check_writable(path, "--out" if out else "the montage", is_dir=False)
    _check_image_format(path)
    ids, reps = load_embeddings(existing.dir)  # read once: the listing and the montage share it
    neighbours = nearest(ids, reps, objid, k, where=str(existing.rundir.embeddings))
    for nid, dist in neighbours:
        typer.echo(f"{nid}\t{dist:.4f}")
    montage(existing.galaxies(), objid, neighbours, path)
    typer.echo(f"montage: {path}")


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
    from astroclr.data.preview import write_preview
    from astroclr.files import check_writable
    from astroclr.plugin.registry import get_registry
    from astroclr.session.build import load_dataset

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
    """List every dataset, augmentation, backbone, method and evaluator, with its package."""
    from rich.console import Console
    from rich.table import Table

    from astroclr.plugin.registry import get_registry

    table = Table("kind", "name", "package", "version", "description")
    for part in get_registry().all_parts():
        table.add_row(part.kind, part.spec.name, part.package, part.version, part.spec.description)
    Console(width=max(120, Console().width)).print(table)
