"""Feeding batches of images from memory or a memory-mapped cube.

A batch is read with one sorted fancy-index into the image cube (fast on a memmap, no
per-sample Python work, no worker processes needed), and the order of batches comes from a
sampler seeded by (seed, epoch) that gives each process its own shard.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class ImageBatches(Dataset):
    """Indexing with an array of indices returns the whole batch as one float32 tensor."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, indices: np.ndarray) -> torch.Tensor:
        order = np.sort(np.asarray(indices))
        return torch.from_numpy(np.ascontiguousarray(self.images[order], dtype=np.float32))


class ShuffledBatches(Sampler[np.ndarray]):
    """Yields index arrays of ``batch_size``; a new permutation each epoch from (seed, epoch).

    With ``world_size`` processes, process ``rank`` takes every ``world_size``-th batch of the
    same global permutation, so shards are disjoint and every process runs the same number of
    steps. ``start_batch`` skips batches already trained (resume inside an epoch).
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = True) -> None:
        if batch_size > n:
            batch_size = n
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> int:
        full = self.n // self.batch_size
        return full if self.drop_last or self.n % self.batch_size == 0 else full + 1

    def __len__(self) -> int:
        return self._global_batches() // self.world_size

    def __iter__(self) -> Iterator[np.ndarray]:
        # Epoch and start are read, and the start reset, when the iterator is made (not at its
        # first item): a consumer may stop early, counting batches by len(), and never exhaust it.
        start, self.start_batch = self.start_batch, 0
        return self._batches(self.epoch, start)

    def _batches(self, epoch: int, start: int) -> Iterator[np.ndarray]:
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        for i in range(start, len(self)):
            b = i * self.world_size + self.rank
            yield perm[b * self.batch_size : (b + 1) * self.batch_size]


def training_loader(images: np.ndarray, batch_size: int, seed: int, rank: int = 0,
                    world_size: int = 1) -> DataLoader:
    """A DataLoader of shuffled full batches for SimCLR training."""
    sampler = ShuffledBatches(len(images), batch_size, seed, rank, world_size)
    return DataLoader(ImageBatches(images), sampler=sampler, batch_size=None, num_workers=0,
                      pin_memory=torch.cuda.is_available())
