"""Computing representations in batches, and the embeddings table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from astropy.table import Table

if TYPE_CHECKING:
    from astroclr.data import Galaxies


@torch.no_grad()
def embed_images(module: torch.nn.Module, images: np.ndarray, batch_size: int = 512,
                 device: str | torch.device = "cpu", channels_last: bool = False,
                 advance: Callable[[int], None] | None = None) -> np.ndarray:
    """Run ``module`` in eval mode over (N, C, H, W) images in batches; returns (N, D) float32.

    Reads a memory-mapped cube one batch at a time, so memory stays bounded by the output.
    """
    device = torch.device(device)
    was_training = module.training
    module.eval().to(device)
    out: np.ndarray | None = None
    try:
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size],
                                                      dtype=np.float32)).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                y = module(x)
            y = y.float().cpu().numpy()
            if out is None:
                out = np.empty((len(images), y.shape[1]), dtype=np.float32)
            out[start:start + len(y)] = y
            if advance is not None:
                advance(len(y))
    finally:
        module.train(was_training)
    assert out is not None
    return out


def embeddings_table(galaxies: "Galaxies", representations: np.ndarray) -> Table:
    """The catalogue's scalar columns plus a ``representation`` vector column."""
    table = Table()
    for name in galaxies.catalog.colnames:
        col = galaxies.catalog[name]
        if col.ndim == 1 and col.dtype.kind in "biufU":
            table[name] = col
    table["representation"] = representations.astype(np.float32)
    table.meta["BANDS"] = ",".join(galaxies.bands)
    table.meta["SURVEY"] = galaxies.survey.name
    return table


def write_embeddings(path: Path, galaxies: "Galaxies", representations: np.ndarray) -> Path:
    """Write the embeddings table as FITS, atomically."""
    tmp = path.with_name(path.name + ".partial")
    embeddings_table(galaxies, representations).write(tmp, format="fits", overwrite=True)
    tmp.replace(path)
    return path
