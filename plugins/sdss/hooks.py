"""Hook implementations of the built-in SDSS plugin."""

from __future__ import annotations

from typing import Iterator

from astroclr import hookimpl
from astroclr.specs import DatasetSpec, Param

PARAMS = (
    Param("bands", list, ["g", "r", "i"], "bands, in channel order", item_type=str),
    Param("bin", int, 2, "k x k flux-conserving binning", low=1, high=16),
    Param("stretch", str, "linear", "linear, or asinh for flux data", choices=("linear", "asinh")),
    Param("normalize", str, "minmax", "per-image [0, 1] over all bands, or none",
          choices=("minmax", "none")),
    Param("limit", int, 0, "use only the first N galaxies (0: all)", low=0),
)


def load(bands: list[str], bin: int, stretch: str, normalize: str, limit: int):
    from astroclr.preprocess import Preprocessing
    from astroclr_sdss.sample import load_sample

    return load_sample(tuple(bands), Preprocessing(bin=bin, stretch=stretch, normalize=normalize),
                       limit=limit)


@hookimpl
def astroclr_datasets() -> Iterator[DatasetSpec]:
    yield DatasetSpec("sdss", "SDSS gri cutouts; with no input, the embedded Galaxy Zoo 1 sample "
                      "(4,014 galaxies, early/late labels)", load, params=PARAMS)
