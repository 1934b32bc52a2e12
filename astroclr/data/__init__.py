"""Galaxy images: the data model, preprocessing, prepared datasets, augmentation pipeline."""

from typing import Any


def __getattr__(name: str) -> Any:  # old path astroclr.data.Galaxies, kept for one release
    if name in ("Galaxies", "SurveyInfo"):
        from astroclr.data import galaxies

        return getattr(galaxies, name)
    raise AttributeError(f"module 'astroclr.data' has no attribute {name!r}")
