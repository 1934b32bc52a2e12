"""Representations of images held in memory, and the embeddings table.

- ``embed_images`` runs a network over an array of images in batches on one device: the
  Python API's ``model.embed(raw)``, the evaluators' ``embed_with`` and ``predict_proba``, for
  arrays a caller already holds. Every dataset-sized embedding (the run's own, ``astroclr
  embed``, ``astroclr predict``) goes through the one resumable, multi-process engine,
  :func:`astroclr.train.infer.infer`.
- ``write_embeddings`` streams the FITS table: header first, then the rows in chunks built
  from the catalogue and the (memory-mapped) representations, never the whole table at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from astropy.table import Table

from astroclr.files import catalog_columns, write_fits_rows
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies

# Rows of the FITS table built and written at a time.
FITS_CHUNK_ROWS = 65536


@torch.no_grad()
def embed_images(module: torch.nn.Module, images: np.ndarray, batch_size: int = 512,
                 device: str | torch.device = "cpu", channels_last: bool = False,
                 advance: Callable[[int], None] | None = None, *,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Run ``module`` in eval mode over (N, C, H, W) images in batches; returns (N, D) float32.

    Reads one batch of ``images`` (which may be a memory map) at a time and writes it into
    ``out`` (a new array, or one given), so memory stays bounded by the output. bf16 autocast
    on CUDA, never on CPU (40x slower there).
    """
    device = torch.device(device)
    was_training = module.training
    module.eval().to(device)
    try:
        for a in range(0, len(images), batch_size):
            b = min(a + batch_size, len(images))
            x = torch.from_numpy(np.array(images[a:b], dtype=np.float32))  # mmaps are read-only
            if device.type == "cuda":  # a pinned batch copies asynchronously; a pageable one not
                x = x.pin_memory()
            x = x.to(device, non_blocking=device.type == "cuda")
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                y = module(x).float().cpu().numpy()
            if out is None:
                out = np.empty((len(images), y.shape[1]), dtype=np.float32)
            out[a:b] = y
            if advance is not None:
                advance(b - a)
    finally:
        module.train(was_training)
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def embed_to_npy(module: torch.nn.Module, images: np.ndarray, path: str | Path,
                 batch_size: int = 512, device: str | torch.device = "cpu",
                 channels_last: bool = False, advance: Callable[[int], None] | None = None, *,
                 devices: Sequence[str | torch.device] | None = None,
                 chunk_batches: int = 32) -> np.ndarray:
    """0.1.0's resumable embedding into a ``.npy`` file, kept for this release (reached
    through the deprecated ``astroclr.embed``): now :func:`astroclr.train.infer.infer` on one
    device, its parts in ``PATH.parts/``. ``channels_last``, ``advance`` and ``chunk_batches``
    no longer apply (the engine chooses)."""
    from astroclr.resolved import TrainOptions
    from astroclr.train.infer import infer, remove_work

    path = Path(path)
    dev = torch.device(devices[0] if devices else device)
    train = TrainOptions.check({"accelerator": "gpu" if dev.type == "cuda" else "cpu",
                                "devices": f"{dev.index}," if dev.index is not None else "1"})
    work = path.with_name(path.name + ".parts")
    reps = infer(module, images, np.arange(len(images)), work, train, batch_size)
    assert reps is not None  # one process: it merges
    os.replace(work / "merged.npy", path)
    remove_work(work)
    return np.load(path, mmap_mode="r")


def _catalog_columns(galaxies: "Galaxies") -> list[str]:
    return catalog_columns(galaxies.catalog, skip=("representation",))


def embeddings_table(galaxies: "Galaxies", representations: np.ndarray) -> Table:
    """The catalogue's scalar columns plus a ``representation`` vector column (in memory)."""
    table = Table()
    for name in _catalog_columns(galaxies):
        table[name] = galaxies.catalog[name]
    table["representation"] = np.asarray(representations, dtype=np.float32)
    table.meta["BANDS"] = ",".join(galaxies.bands)
    table.meta["SURVEY"] = galaxies.survey.name
    return table


def write_embeddings(path: Path, galaxies: "Galaxies", representations: np.ndarray,
                     chunk_rows: int = FITS_CHUNK_ROWS) -> Path:
    """Write the embeddings table as FITS, atomically, streaming rows in chunks.

    ``representations`` may be a memory map (``embed_to_npy``): only ``chunk_rows`` rows of
    the table exist in memory at a time. The file reads back with ``Table.read`` as the
    catalogue's scalar columns plus an (N, D) ``representation`` column.
    """
    from astropy.io import fits

    path = Path(path)
    n = len(galaxies)
    if len(representations) != n:
        raise AstroclrError(f"{len(representations)} representations for {n} galaxies")
    names = _catalog_columns(galaxies)
    # Column formats from the whole catalogue (string widths), the header from its first row.
    formats = {c.name: c.format for c in fits.table_to_hdu(
        Table({k: galaxies.catalog[k] for k in names})).columns} if names else {}
    dim = int(representations.shape[1])

    def chunk_hdu(a: int, b: int) -> "fits.BinTableHDU":
        cols = [fits.Column(name=k, format=formats[k], array=np.asarray(galaxies.catalog[k][a:b]))
                for k in names]
        cols.append(fits.Column(name="representation", format=f"{dim}E",
                                array=np.asarray(representations[a:b], dtype=np.float32)))
        return fits.BinTableHDU.from_columns(cols)

    return write_fits_rows(path, n, chunk_hdu, {"BANDS": ",".join(galaxies.bands),
                                                "SURVEY": galaxies.survey.name}, chunk_rows)
