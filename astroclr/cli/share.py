"""Commands that share trained models: export (a run as a model package), models (the
installed model plugins)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from astroclr.cli.common import app, friendly


@app.command("export")
@friendly
def export_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="The model package folder to write."),
    onnx: bool = typer.Option(False, "--onnx", help="Also write the encoder as ONNX (needs "
                              "the export extra: pip install 'astroclr[export]')."),
    embeddings: bool = typer.Option(True, "--embeddings/--no-embeddings",
                                    help="Include the run's embeddings (similar searches them)."),
    licence: Optional[str] = typer.Option(None, "--licence", help="Licence of the weights, for "
                                          "the model card (default: BSD-3-Clause, as astroclr)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model package in --out."),
) -> None:
    """Write a run's encoder as a self-describing model package: safetensors weights, model
    card, configuration, checksums (verified on load), and with --onnx an ONNX encoder."""
    from astroclr.session.export import DEFAULT_LICENCE, export

    done = export(run_dir, out, onnx=onnx, embeddings=embeddings,
                  licence=licence or DEFAULT_LICENCE, overwrite=overwrite)
    typer.echo(f"model package: {done.path} ({len(done.files)} files, "
               f"{done.bytes / 1e6:.1f} MB)")


@app.command("models")
@friendly
def models_cmd() -> None:
    """List the installed model plugins: name, package, and the summary of each model card."""
    from rich.console import Console
    from rich.table import Table

    from astroclr.plugin.registry import get_registry
    from astroclr.runs.package import is_package, summary

    table = Table("name", "package", "version", "description", "model card")
    for name, part in sorted(get_registry().parts("model").items()):
        try:
            folder = part.spec.directory()
            card = summary(folder) if is_package(folder) else f"(not a model package: {folder})"
        except Exception as exc:  # a broken plugin must not hide the others
            card = f"(unavailable: {exc})"
        table.add_row(name, part.package, part.version, part.spec.description, card)
    if not table.rows:
        typer.echo("no model plugins installed (a package registers them through the "
                   "astroclr_models hook; see docs/models.md)")
        return
    Console(width=max(160, Console().width)).print(table)
