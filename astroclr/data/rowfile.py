"""A staging file of fixed-size image rows, written by row number from any order of chunks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from astroclr.plugin.specs import AstroclrError


class RowFile:
    """Rows of a float32 ``.npy`` file written and read with pwrite/pread.

    Not a memory map on purpose: the writer's resident memory then stays at one chunk, whatever
    the size of the file (mapped pages would count in its RSS up to the whole file).
    """

    def __init__(self, path: Path, shape: tuple[int, ...]) -> None:
        self.path = path
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            got, fortran, dtype = read_header(fh)
            self.offset = fh.tell()
        if tuple(got) != tuple(shape) or dtype != np.float32 or fortran:
            raise AstroclrError(f"{path} is {dtype} {got}, expected float32 {shape}: delete "
                                f"{path.parent} to start afresh")
        self.shape = tuple(shape)
        self.row_bytes = int(np.prod(shape[1:])) * 4
        self.fd = os.open(path, os.O_RDWR)

    @classmethod
    def create(cls, path: Path, shape: tuple[int, ...]) -> "RowFile":
        arr = np.lib.format.open_memmap(path, "w+", np.float32, shape)  # header + sparse body
        del arr
        return cls(path, shape)

    @staticmethod
    def _runs(rows: np.ndarray) -> list[tuple[int, int, int]]:
        """(first row, position in ``rows``, length) of each run of consecutive rows."""
        if len(rows) == 0:
            return []
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(rows)]])
        return [(int(rows[a]), int(a), int(b - a)) for a, b in zip(starts, ends)]

    def write_rows(self, rows: np.ndarray, images: np.ndarray) -> None:
        images = np.ascontiguousarray(images, dtype=np.float32)
        for first, pos, length in self._runs(np.asarray(rows)):
            data = memoryview(images[pos : pos + length]).cast("B")
            offset = self.offset + first * self.row_bytes
            while len(data):
                written = os.pwrite(self.fd, data, offset)
                data, offset = data[written:], offset + written

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.shape[1:]), np.float32)
        flat = memoryview(out).cast("B")
        for first, pos, length in self._runs(np.asarray(rows)):
            want = length * self.row_bytes
            got = os.preadv(self.fd, [flat[pos * self.row_bytes : pos * self.row_bytes + want]],
                            self.offset + first * self.row_bytes)
            if got != want:
                raise AstroclrError(f"{self.path}: short read (truncated file?)")
        return out

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
