"""Commands that apply a trained run: embed, finetune, predict."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from astroclr.cli.common import (
    AcceleratorOpt,
    DevicesOpt,
    ModelOpt,
    NodesOpt,
    QuietOpt,
    StrategyOpt,
    app,
    friendly,
    rich_escape,
    schema_option,
)
from astroclr.cli.schema_help import DEFAULTS

_DatasetOpt = typer.Option(None, "--dataset", "-d",
                           help=rich_escape("Dataset plugin (default: the run's; its [dataset] "
                                            "table is the starting point for --set dataset.*)."))
_OverwriteOpt = typer.Option(False, "--overwrite", help="Replace an existing --out file.")
_Sets = typer.Option(None, "--set", "-s", metavar="KEY=VALUE",
                     help="Set a dataset.* or train.* key, e.g. --set dataset.input=prepared "
                          "(repeatable).")


def _devices(accelerator: Optional[str], devices: Optional[str], strategy: Optional[str],
             num_nodes: Optional[int]) -> dict:
    return {"accelerator": accelerator, "devices": devices, "strategy": strategy,
            "num_nodes": num_nodes}


@app.command("embed")
@friendly(interruptible=True)
def embed_cmd(
    run_dir: Optional[Path] = typer.Argument(None, metavar="RUN_DIR", help="A run directory or "
                                             "model package (or --model NAME)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output table: .fits, or .parquet "
                             "(needs pyarrow)."),
    dataset: Optional[str] = _DatasetOpt,
    sets: Optional[List[str]] = _Sets,
    accelerator: Optional[str] = AcceleratorOpt,
    devices: Optional[str] = DevicesOpt,
    strategy: Optional[str] = StrategyOpt,
    num_nodes: Optional[int] = NodesOpt,
    overwrite: bool = _OverwriteOpt,
    model: Optional[str] = ModelOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Embed any dataset with a run's encoder: id, catalogue columns, representation."""
    from astroclr.classify.apply import embed_dataset
    from astroclr.runs.package import model_source

    written = embed_dataset(model_source(run_dir, model), out, dataset, sets or (),
                            progress=not quiet, overwrite=overwrite, report=typer.echo,
                            **_devices(accelerator, devices, strategy, num_nodes))
    if written is not None:
        typer.echo(f"embeddings: {written}")


@app.command("finetune")
@friendly(interruptible=True)
def finetune_cmd(
    run_dir: Optional[Path] = typer.Argument(None, metavar="RUN_DIR", help="A run directory or "
                                             "model package (or --model NAME)."),
    out: Path = typer.Option(..., "--out", "-o", help="Classifier directory to write."),
    dataset: Optional[str] = _DatasetOpt,
    sets: Optional[List[str]] = typer.Option(
        None, "--set", "-s", metavar="KEY=VALUE",
        help="Set a dataset.* key, or a recipe.* key of the fine-tuning recipe (recipe.lr, "
             "recipe.encoder_lr, recipe.max_steps, recipe.val_fraction, ...; see "
             "docs/classify.md) (repeatable)."),
    label_column: Optional[str] = typer.Option(None, "--label-column",
                                               help="Catalogue column of integer labels, -1 "
                                                    "unlabelled (default: the run's); with "
                                                    "--labels-file, the file's column too."),
    labels: Optional[int] = typer.Option(None, "--labels", min=1,
                                         help="Train on N labelled galaxies, stratified and "
                                              "seeded (default: all)."),
    labels_file: Optional[Path] = typer.Option(
        None, "--labels-file", help="Train on exactly the galaxies of this CSV or FITS file: "
        "an id column and a label column (--label-column, else label) of class names or "
        "integers."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1,
                             help="Seed of the choice of labels, the split and training."),
    mode: str = schema_option("recipe.mode", "--mode", default=DEFAULTS["recipe.mode"]),
    augment: str = schema_option("recipe.augment", "--augment", default=DEFAULTS["recipe.augment"]),
    init: Optional[str] = schema_option("recipe.init", "--init"),
    unlabelled: Optional[str] = schema_option("recipe.unlabelled", "--unlabelled"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a classifier in --out."),
    model: Optional[str] = ModelOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Train a classifier from labelled galaxies on a run's encoder; writes a classifier directory."""
    from astroclr.classify.apply import finetune_run
    from astroclr.runs.package import model_source

    clf = finetune_run(model_source(run_dir, model), out, dataset, sets or (), label_column,
                       labels, seed, mode, overwrite, progress=not quiet, augment=augment,
                       labels_file=labels_file,
                       **{k: v for k, v in (("init", init), ("unlabelled", unlabelled))
                          if v is not None})
    skipped = clf.metrics.get("skipped_nonfinite") or 0
    if skipped:
        typer.echo(f"skipped {skipped} labelled galaxies with non-finite pixels (NaN or inf)")
    val = clf.metrics.get("validation") or {}
    score = (f"; validation balanced accuracy {val['balanced_accuracy']:.3f} on {val['n']} "
             f"held-out galaxies") if val else ""
    typer.echo(f"classifier ({', '.join(clf.class_names)}): {out}{score}")


@app.command("predict")
@friendly(interruptible=True)
def predict_cmd(
    classifier: Path = typer.Argument(..., help="A classifier directory (astroclr finetune)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output table: .fits, or .parquet "
                             "(needs pyarrow)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d",
                                          help="Dataset plugin (default: the classifier's)."),
    sets: Optional[List[str]] = _Sets,
    accelerator: Optional[str] = AcceleratorOpt,
    devices: Optional[str] = DevicesOpt,
    strategy: Optional[str] = StrategyOpt,
    num_nodes: Optional[int] = NodesOpt,
    overwrite: bool = _OverwriteOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Classify every galaxy of a dataset: id, pred_label, pred_class, prob_<class>, catalogue."""
    from astroclr.classify.apply import predict_dataset

    written = predict_dataset(classifier, out, dataset, sets or (), progress=not quiet,
                              overwrite=overwrite, report=typer.echo,
                              **_devices(accelerator, devices, strategy, num_nodes))
    if written is not None:
        typer.echo(f"predictions: {written}")

