"""Computing representations in batches, and the embeddings table.

At scale (a prepared, memory-mapped dataset of millions of galaxies):

- ``embed_images`` reads one batch of the image cube at a time and writes each batch's
  representations straight into its output array, which may itself be a memory map
  (``out=``): memory stays bounded by one batch, whatever N is;
- ``embed_to_npy`` fills a ``.npy`` memory map chunk by chunk and records how many rows are
  done, so an interrupted embedding resumes where it stopped (and a finished one is reused);
- with several devices (``devices=["cuda:0", "cuda:1"]``), each chunk is split into one
  contiguous part per device, embedded concurrently by one copy of the model per device (one
  thread each: the GPU work releases the GIL), into disjoint rows of the same output;
- ``write_embeddings`` streams the FITS table: header first, then the rows in chunks built
  from the catalogue and the (memory-mapped) representations, never the whole table at once.
"""

from __future__ import annotations

import copy
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from astropy.table import Table

from astroclr.files import catalog_columns, read_json, write_fits_rows, write_json
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies

# Rows of the FITS table built and written at a time.
FITS_CHUNK_ROWS = 65536


def _as_devices(device: str | torch.device | None,
                devices: Sequence[str | torch.device] | None) -> list[torch.device]:
    if devices:
        return [torch.device(d) for d in devices]
    return [torch.device(device if device is not None else "cpu")]


@torch.no_grad()
def _embed_range(module: torch.nn.Module, images: np.ndarray, start: int, stop: int,
                 batch_size: int, device: torch.device, channels_last: bool, out: np.ndarray,
                 advance: Callable[[int], None] | None) -> None:
    """Embed rows [start, stop) into ``out[start:stop]``, one batch at a time."""
    use_bf16 = device.type == "cuda"
    for a in range(start, stop, batch_size):
        b = min(a + batch_size, stop)
        x = torch.from_numpy(np.array(images[a:b], dtype=np.float32))  # a copy: mmaps are read-only
        if device.type == "cuda":
            x = x.pin_memory()
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            y = module(x)
        out[a:b] = y.float().cpu().numpy()
        if advance is not None:
            advance(b - a)


def _output_dim(module: torch.nn.Module, images: np.ndarray, device: torch.device,
                channels_last: bool) -> int:
    x = torch.from_numpy(np.array(images[:1], dtype=np.float32)).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = module(x)
    return int(y.shape[1])


def _embed_into(module: torch.nn.Module, images: np.ndarray, out: np.ndarray, start: int,
                stop: int, batch_size: int, devices: list[torch.device], channels_last: bool,
                advance: Callable[[int], None] | None, replicas: list[torch.nn.Module]) -> None:
    """Rows [start, stop): on one device directly, on several split into contiguous parts."""
    if len(devices) == 1:
        _embed_range(replicas[0], images, start, stop, batch_size, devices[0], channels_last,
                     out, advance)
        return
    bounds = np.linspace(start, stop, len(devices) + 1).round().astype(int)
    with ThreadPoolExecutor(len(devices)) as pool:
        futures = [pool.submit(_embed_range, replicas[i], images, int(bounds[i]),
                               int(bounds[i + 1]), batch_size, devices[i], channels_last, out,
                               advance) for i in range(len(devices)) if bounds[i + 1] > bounds[i]]
        for f in futures:
            f.result()


def _replicas(module: torch.nn.Module, devices: list[torch.device]) -> list[torch.nn.Module]:
    first = module.eval().to(devices[0])
    return [first] + [copy.deepcopy(first).to(d).eval() for d in devices[1:]]


@torch.no_grad()
def embed_images(module: torch.nn.Module, images: np.ndarray, batch_size: int = 512,
                 device: str | torch.device = "cpu", channels_last: bool = False,
                 advance: Callable[[int], None] | None = None, *,
                 devices: Sequence[str | torch.device] | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Run ``module`` in eval mode over (N, C, H, W) images in batches; returns (N, D) float32.

    Reads a memory-mapped cube one batch at a time and writes each batch into ``out`` (a new
    array, or one given, e.g. a ``.npy`` memory map), so memory stays bounded by the output.
    ``devices`` (several) splits the images between copies of the model on each device.
    """
    devs = _as_devices(device, devices)
    was_training = module.training
    try:
        replicas = _replicas(module, devs)
        if out is None:
            dim = _output_dim(replicas[0], images, devs[0], channels_last)
            out = np.empty((len(images), dim), dtype=np.float32)
        _embed_into(module, images, out, 0, len(images), batch_size, devs, channels_last, advance,
                    replicas)
    finally:
        module.train(was_training)
    return out


def model_fingerprint(module: torch.nn.Module) -> str:
    """A hash of the module's weights: a partial embedding is only resumed with the same model."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def embed_to_npy(module: torch.nn.Module, images: np.ndarray, path: str | Path,
                 batch_size: int = 512, device: str | torch.device = "cpu",
                 channels_last: bool = False, advance: Callable[[int], None] | None = None, *,
                 devices: Sequence[str | torch.device] | None = None,
                 chunk_batches: int = 32) -> np.memmap:
    """Embed into a ``.npy`` file (memory-mapped), resumably; returns it opened read-only.

    Progress is recorded in ``PATH.progress.json`` after each chunk of ``chunk_batches``
    batches (data flushed first), so a killed process loses at most one chunk. The file is
    renamed into place when complete; a complete file for the same model and images is reused.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    progress_file = path.with_name(path.name + ".progress.json")
    devs = _as_devices(device, devices)
    was_training = module.training
    try:
        replicas = _replicas(module, devs)
        n = len(images)
        dim = _output_dim(replicas[0], images, devs[0], channels_last)
        key = {"n": n, "dim": dim, "model": model_fingerprint(module),
               "shape": list(images.shape)}
        if path.is_file() and progress_file.is_file() and read_json(progress_file, {}).get(
                "key") == key and read_json(progress_file, {}).get("done") == n:
            if advance is not None:
                advance(n)
            return np.load(path, mmap_mode="r")
        done = 0
        progress = read_json(progress_file, {}) if progress_file.is_file() else {}
        if partial.is_file() and progress.get("key") == key:
            out = np.load(partial, mmap_mode="r+")
            done = int(progress.get("done", 0))
        else:
            out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, dim))
        if advance is not None and done:
            advance(done)
        step = max(1, chunk_batches) * batch_size
        for start in range(done, n, step):
            stop = min(start + step, n)
            _embed_into(module, images, out, start, stop, batch_size, devs, channels_last,
                        advance, replicas)
            out.flush()
            write_json(progress_file, {"key": key, "done": stop})
        out.flush()
        del out
        os.replace(partial, path)
        write_json(progress_file, {"key": key, "done": n})
    finally:
        module.train(was_training)
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
