"""Hook implementations of the built-in SDSS plugin.

One dataset, ``sdss``, with several input forms (``input``): the embedded Galaxy Zoo 1 sample
(default), per-galaxy FITS cutouts, SDSS imaging frames plus a catalogue, colour composites,
and a prepared (memory-mapped) directory written by ``astroclr prepare``. One command group,
``astroclr sdss``, downloads frames. Heavy imports happen inside the callables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from astroclr.api import AstroclrError, CommandSpec, DatasetSpec, Param, hookimpl

INPUTS = ("sample", "fits_cutouts", "frames", "composites", "prepared")
#: the reference work's 2x2 binning of 64 px cutouts, per-image [0, 1] (the core declares
#: bin, stretch, softening and normalize with these defaults)
PREPROCESSING = {"bin": 2, "stretch": "linear", "softening": 1.0, "normalize": "minmax"}

PARAMS = (
    Param("input", str, "sample", "sample (embedded GZ1 galaxies), fits_cutouts, frames, "
          "composites, or prepared (a directory written by astroclr prepare)", choices=INPUTS),
    Param("path", str, "", "folder of cutouts / frames / images, or the prepared directory"),
    Param("catalog", str, "", "catalogue file (CSV, FITS, VOTable, ...); required for frames"),
    Param("catalog_format", str, "", "astropy Table format of the catalogue ('' : from suffix)"),
    Param("id_column", str, "id", "catalogue column of the unique galaxy id"),
    Param("ra_column", str, "ra", "catalogue column of RA, deg"),
    Param("dec_column", str, "dec", "catalogue column of Dec, deg"),
    Param("z_column", str, "", "catalogue column of redshift ('' : none)"),
    Param("z_max", float, 0.0, "keep only z < z_max (0: no cut; reference work: 0.15)", low=0.0),
    Param("label_column", str, "", "catalogue column of labels ('' : unlabelled)"),
    Param("label_map", str, "", "raw label -> class, e.g. '0=early,1=late,2=late,3=late,4=-,5=-' "
          "('-': unlabelled); '' : labels are already integers"),
    Param("unmapped_label", str, "error", "a label outside label_map (without label_map: not "
          "an integer class): error (naming its row), unlabelled or skip",
          choices=("error", "unlabelled", "skip")),
    Param("label_names", list, [], "class names of integer labels 0, 1, ... (without label_map)",
          item_type=str),
    Param("keep_columns", list, [], "further catalogue columns to carry along", item_type=str),
    Param("run_column", str, "run", "catalogue column of the SDSS run (frames)"),
    Param("camcol_column", str, "camcol", "catalogue column of the SDSS camcol (frames)"),
    Param("field_column", str, "field", "catalogue column of the SDSS field (frames)"),
    Param("file_pattern", str, "", "file name of a galaxy: '{id}.fits', '{id}_{band}.fits', "
          "'{id}.jpeg' ... ('' : detected)"),
    Param("file_bands", list, [], "band order of FITS cubes without a BANDS keyword "
          "([] : bands)", item_type=str),
    Param("composite_bands", list, ["i", "r", "g"], "bands of a composite's R, G, B channels",
          item_type=str, length=3),
    Param("crop", int, 0, "composites: keep the central crop px before resizing (0: all; "
          "GZ1 JPEGs: 212)", low=0),
    Param("size", int, 64, "raw cutout side, px, before binning", low=2, high=4096),
    Param("edge", str, "pad", "frames: objects near an edge are padded (NaN, filled, recorded "
          "in invalid_frac) or skipped", choices=("pad", "skip")),
    Param("max_invalid", float, 0.5, "skip a cutout with more than this fraction of NaN/inf or "
          "off-frame pixels in any band", low=0.0, high=1.0),
    Param("pixel_scale", float, 0.396, "native pixel scale, arcsec (SDSS: 0.396)", low=0.0),
    Param("bands", list, ["g", "r", "i"], "bands, in channel order", item_type=str),
    Param("pool", str, "", "input = sample only: add an unlabelled pool for pre-training: '' "
          "(none) or gz2 (7,704 Galaxy Zoo 2 challenge galaxies, label -1)",
          choices=("", "gz2")),
    Param("limit", int, 0, "use only the first N galaxies (0: all)", low=0),
    Param("chunk_size", int, 512, "galaxies per chunk of astroclr prepare (a unit of work and "
          "of resuming)", low=1),
)


def load(**params: Any):
    """The ``sdss`` dataset as :class:`astroclr.data.galaxies.Galaxies` (in memory, or memory-mapped for
    ``input = "prepared"``)."""
    kind = params["input"]
    _check_pool_param(params)
    if kind == "sample":
        _check_sample_params(params)
        from astroclr.api import Preprocessing
        from astroclr_sdss.sample import load_sample

        prep = Preprocessing(bin=params["bin"], stretch=params["stretch"],
                             softening=params["softening"], normalize=params["normalize"])
        try:
            return load_sample(tuple(params["bands"]), prep, limit=params["limit"],
                               pool=params["pool"])
        except ValueError as exc:  # an unknown band: a user error, not a bug
            raise AstroclrError(str(exc)) from None
    if kind == "prepared":
        return _open_prepared(params)
    from astroclr_sdss.source import build_source, load_in_memory

    return load_in_memory(build_source(params))


def prepare(out_dir: Path, workers: int | None = None, progress: bool = True,
            max_chunks: int | None = None, **params: Any) -> dict:
    """Write the ``sdss`` dataset as a prepared directory (parallel, resumable)."""
    from astroclr.api import GalaxiesSource, write_prepared

    kind = params["input"]
    if kind == "prepared":
        raise AstroclrError(f"dataset sdss: input = 'prepared' ({params['path']}) is prepared "
                            f"already; use it directly")
    if kind == "sample":
        galaxies = load(**params)
        source = GalaxiesSource(galaxies, {"input": "sample", "params": params})
        return write_prepared(source, out_dir, workers=1, progress=progress,
                              chunk_size=params["chunk_size"], max_chunks=max_chunks)
    from astroclr_sdss.source import build_source

    return write_prepared(build_source(params), out_dir, workers=workers, progress=progress,
                          chunk_size=params["chunk_size"], max_chunks=max_chunks)


#: the parameters the embedded sample reads (its cutouts are 64 px, its catalogue its own):
#: any other set away from its default would be dropped without a word
SAMPLE_READS = frozenset({"input", "bands", "pool", "limit", "chunk_size", *PREPROCESSING})


def _check_sample_params(params: dict) -> None:
    # A path or catalogue with the default input is almost surely a forgotten `input`.
    for key in ("path", "catalog"):
        if params[key]:
            raise AstroclrError(f"dataset sdss: {key} is set but input is 'sample' (the embedded "
                                f"galaxies); set input to fits_cutouts, frames, composites or "
                                f"prepared")
    defaults = {p.name: p.default for p in PARAMS}
    for key in sorted(set(params) & set(defaults) - SAMPLE_READS):
        if params[key] != defaults[key]:
            raise AstroclrError(f"dataset sdss: {key} = {params[key]!r} does not apply to input "
                                f"'sample' (the embedded 64 px cutouts and their catalogue); "
                                f"it applies to the inputs that read files")


def _check_pool_param(params: dict) -> None:
    if params["pool"] and params["input"] != "sample":
        raise AstroclrError(f"dataset sdss: pool = {params['pool']!r} adds galaxies to the "
                            f"embedded sample only, but input is {params['input']!r}")


def _open_prepared(params: dict):
    from astroclr.api import open_prepared

    if not params["path"]:
        raise AstroclrError("dataset sdss: input = 'prepared' needs path (the prepared directory)")
    galaxies = open_prepared(params["path"])
    if tuple(params["bands"]) != galaxies.bands and params["bands"] != ["g", "r", "i"]:
        raise AstroclrError(f"dataset sdss: bands {params['bands']} asked for, but "
                            f"{params['path']} holds {list(galaxies.bands)}")
    if params["limit"] and params["limit"] < len(galaxies):
        n = params["limit"]
        galaxies = type(galaxies)(galaxies.images[:n], galaxies.catalog[:n], galaxies.survey,
                                  galaxies.preprocessing, galaxies.label_names, galaxies.raw_size)
    galaxies.catalog.meta["skips"] = _prepared_skips(Path(params["path"]))
    return galaxies


def _prepared_skips(path: Path) -> list:
    """The skip report ``astroclr prepare`` wrote beside the images, so a run on a prepared
    dataset keeps it too."""
    import csv

    from astroclr.api import Skip

    try:
        with open(path / "skipped.csv", newline="") as fh:
            return [Skip(int(r["row"]), r["reason"], r["detail"], r["id"])
                    for r in csv.DictReader(fh)]
    except (OSError, KeyError, ValueError):  # an older or hand-made directory: no report
        return []


@hookimpl
def astroclr_datasets() -> Iterator[DatasetSpec]:
    yield DatasetSpec("sdss", "SDSS gri cutouts from FITS cutouts, frames + catalogue, colour "
                      "composites or a prepared directory; with no input, the embedded Galaxy "
                      "Zoo 1 sample (4,014 galaxies, early/late labels)", load, params=PARAMS,
                      prepare=prepare, preprocessing=PREPROCESSING,
                      read_image="astroclr_sdss.query_image:read_image")


@hookimpl
def astroclr_commands() -> Iterator[CommandSpec]:
    yield CommandSpec("sdss", "SDSS tools: download imaging frames for a catalogue",
                      "astroclr_sdss.cli:make_app")
