"""The labelling loop's command: suggest (which galaxies to label next)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from astroclr.cli.common import app, friendly


@app.command("suggest")
@friendly
def suggest_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory (its embeddings.fits is searched)."),
    n: int = typer.Option(..., "--n", "-n", min=1, help="How many galaxies to suggest."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV of the picks: id, rank, reason, "
                             "score, probe_class; a montage of them beside it (.png)."),
    labels_file: Optional[Path] = typer.Option(
        None, "--labels-file", help="The galaxies labelled so far (CSV or FITS: id + label "
        "column): warm start, uncertain and diverse picks among the others. Without it: a cold "
        "start, representative and diverse picks."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="The label column "
                                               "of --labels-file and of the dataset (default: "
                                               "the run's, else label)."),
    strategy: str = typer.Option("diverse", help="Warm start: diverse (uncertain galaxies "
                                 "spread over representation space) or uncertainty (the most "
                                 "uncertain alone)."),
    seed: int = typer.Option(0, help="Seed of the clustering."),
) -> None:
    """Suggest which galaxies to label next: representative ones first, then the ones the
    current probe is least sure of; writes a CSV for labelling and a montage."""
    from astroclr.classify.suggest import suggest_run
    from astroclr.files import check_writable

    check_writable(out, "--out", is_dir=False)  # before the dataset is loaded
    found = suggest_run(run_dir, n, labels_file, out=out, seed=seed, strategy=strategy,
                        label_column=label_column)
    reason = found.table["reason"][0]
    typer.echo(f"{len(found.table)} galaxies to label ({reason}): {found.csv}")
    typer.echo(f"montage: {found.montage}")
