"""``astroclr sdss ...``: the SDSS plugin's command group (built lazily by the hook)."""

from __future__ import annotations

from pathlib import Path


def make_app():
    import typer

    app = typer.Typer(help="SDSS tools: download imaging frames for a catalogue.",
                      no_args_is_help=True)

    @app.callback()
    def _group() -> None:
        """SDSS tools."""

    @app.command()
    def download(
        catalog: Path = typer.Option(..., "--catalog", help="catalogue (CSV, FITS, VOTable) with "
                                     "run, camcol, field columns"),
        out: Path = typer.Option(..., "--out", help="folder for the frames"),
        bands: str = typer.Option("g,r,i", help="comma-separated bands"),
        release: str = typer.Option("dr17", help="data release, dr8 ... dr17"),
        base_url: str = typer.Option("https://data.sdss.org/sas", help="SAS root URL"),
        url_template: str = typer.Option("", help="URL template; fields: base_url, release, "
                                         "survey, rerun, run, camcol, field, band"),
        rerun: int = typer.Option(301, help="photometric rerun"),
        workers: int = typer.Option(8, help="parallel downloads"),
        retries: int = typer.Option(4, help="tries after the first, with exponential back-off"),
        backoff: float = typer.Option(1.0, help="first back-off delay, s (doubles each retry)"),
        timeout: float = typer.Option(60.0, help="network timeout per request, s"),
        run_column: str = typer.Option("run"),
        camcol_column: str = typer.Option("camcol"),
        field_column: str = typer.Option("field"),
        catalog_format: str = typer.Option("", help="astropy Table format ('' : from suffix)"),
        progress: bool = typer.Option(True, help="show a progress bar"),
    ) -> None:
        """Fetch the frames the catalogue's objects lie on (resumable: rerun to continue)."""
        from rich.console import Console

        from astroclr.api import AstroclrError, check_writable
        from astroclr_sdss.catalog import read_table
        from astroclr_sdss.download import DEFAULT_URL_TEMPLATE, download_frames, frame_jobs

        console = Console(stderr=True)
        try:
            check_writable(out, "--out")  # before the catalogue is read or anything fetched
            table = read_table(catalog, catalog_format)
            band_list = [b.strip() for b in bands.split(",") if b.strip()]
            jobs = frame_jobs(table, band_list, release, base_url,
                              url_template or DEFAULT_URL_TEMPLATE, rerun,
                              (run_column, camcol_column, field_column), str(catalog))
        except (AstroclrError, KeyError, ValueError) as exc:
            # soft_wrap: an error stays one line however narrow the terminal
            console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        summary = download_frames(jobs, out, workers, retries, backoff, timeout, progress)
        console.print(f"{summary['frames']} frames: {summary['downloaded']} downloaded, "
                      f"{summary['present']} already present, {len(summary['failed'])} failed "
                      f"({summary['seconds']:.1f} s) -> {out}")
        for name, error in summary["failed"]:
            console.print(f"[red]failed[/red] {name}: {error}", highlight=False, soft_wrap=True)
        if summary["failed"]:
            raise typer.Exit(1)

    return app
