"""Galaxy images: the data model, preprocessing, prepared datasets, augmentation pipeline."""

from typing import Any


def __getattr__(name: str) -> Any:  # 0.1.0's astroclr.data.Galaxies: astroclr/moved.py
    from astroclr.moved import MOVED, moved

    if name in MOVED["astroclr.data"]:
        return moved("astroclr.data", name)
    raise AttributeError(f"module 'astroclr.data' has no attribute {name!r}")
