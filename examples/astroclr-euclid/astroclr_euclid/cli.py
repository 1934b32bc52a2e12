"""``astroclr euclid ...``: the plugin's command group (built lazily by the commands hook)."""

from __future__ import annotations

from pathlib import Path


def make_app():
    import typer

    app = typer.Typer(help="Euclid tools: synthetic cutouts, cutout inspection.",
                      no_args_is_help=True)

    @app.command("synth")
    def synth(
        out: Path = typer.Option(..., "--out", "-o", help="Folder to write the cutouts to."),
        n: int = typer.Option(64, "-n", min=1, help="Number of galaxies."),
        field: float = typer.Option(9.6, "--field", min=1.0,
                                    help="Cutout side, arcsec (9.6: 96 VIS px, 32 NISP px)."),
        seed: int = typer.Option(0, help="Random seed."),
    ) -> None:
        """Write synthetic Euclid-like multi-extension FITS cutouts (VIS, NIR_Y, NIR_J, NIR_H)."""
        from astroclr_euclid.synthetic import write_sample

        paths = write_sample(out, n, field, seed)
        typer.echo(f"wrote {len(paths)} cutouts to {out}")

    @app.command("inspect")
    def inspect(file: Path = typer.Argument(..., help="A Euclid cutout (FITS).")) -> None:
        """List a cutout's band extensions: shape, pixel scale, PSF FWHM, noise, flux."""
        import warnings

        import numpy as np
        from astropy.io import fits
        from astropy.wcs import WCS, FITSFixedWarning
        from astropy.wcs.utils import proj_plane_pixel_scales

        with fits.open(file) as hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            head = hdul[0].header
            typer.echo(f"{file.name}: OBJID={head.get('OBJID', '-')} RA={head.get('RA', '-')} "
                       f"DEC={head.get('DEC', '-')} LABEL={head.get('LABEL', '-')}")
            for hdu in hdul[1:]:
                if hdu.data is None:
                    continue
                scale = proj_plane_pixel_scales(WCS(hdu.header).celestial).mean() * 3600
                typer.echo(f"  {hdu.name:6s} {hdu.data.shape[1]}x{hdu.data.shape[0]} px  "
                           f"{scale:.3f}\"/px  PSF {hdu.header.get('PSF_FWHM', '?')}\"  "
                           f"sky {hdu.header.get('SKYRMS', '?')} {hdu.header.get('BUNIT', '')}"
                           f"  total {np.nansum(hdu.data):.3g}")

    return app
