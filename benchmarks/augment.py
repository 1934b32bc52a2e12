"""Throughput of astroclr's batched augmentations vs a per-image torchvision pipeline.

Both pipelines apply the same kinds of transforms with the same probabilities to the same
images (the embedded SDSS sample, 3×32×32, tiled to ``--n`` images):

- batched: ``astroclr.data.augment.build_pipeline`` on whole batches, as the training step does;
- per-image: ``torchvision.transforms.v2`` in a Dataset's ``__getitem__``, iterated by a
  ``DataLoader`` (``--workers`` 0 or 2) that collates the batches, as lightly's usual
  per-sample transforms are run.

Run: ``python benchmarks/augment.py [--n 4000] [--batch-size 256] [--workers 0|2] [--threads 1]``.
Prints images/s of both and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

PIPELINE = ["crop_resize", "rotate_flip", "psf", "band_jitter", "noise", "cutout"]


class PerImage(Dataset):
    """Applies a per-sample transform in ``__getitem__``, like a torchvision-style dataset."""

    def __init__(self, images: torch.Tensor, transform) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i])


def _band_jitter(x: torch.Tensor) -> torch.Tensor:
    return x * torch.exp(0.05 * torch.randn(x.shape[0], 1, 1))


def torchvision_pipeline(size: int) -> v2.Compose:
    """The per-image equivalent of the batched default pipeline (float tensors, no PIL)."""
    half = 0.5
    return v2.Compose([
        v2.RandomApply([v2.RandomResizedCrop(size, scale=(0.36, 1.0), ratio=(1.0, 1.0),
                                             antialias=True)], p=half),
        v2.RandomRotation(180),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 0.9))], p=half),
        v2.RandomApply([v2.Lambda(_band_jitter)], p=half),
        v2.RandomApply([v2.GaussianNoise(sigma=0.05, clip=False)], p=half),
        v2.RandomErasing(p=half, scale=(0.01, 0.09), ratio=(0.33, 3.0), value=0),
    ])


def images_per_second(fn, warm_up, n: int, repeats: int) -> float:
    """Best-of-``repeats`` throughput of ``fn`` (processing ``n`` images), after ``warm_up()``."""
    warm_up()  # allocations, lazy imports, worker start-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0, choices=(0, 2))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (2 oversubscribes a shared 2-core machine "
                             "and makes both figures erratic)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from astroclr.data.augment import build_pipeline, resolve_augment_config
    from astroclr.plugin.registry import get_registry
    from astroclr_sdss.sample import load_sample

    galaxies = load_sample()
    reps = -(-args.n // len(galaxies))
    images = torch.from_numpy(np.tile(galaxies.images, (reps, 1, 1, 1))[: args.n].copy())

    registry = get_registry()
    names, params = resolve_augment_config(registry, {"pipeline": PIPELINE})
    pipeline = build_pipeline(registry, galaxies.survey, names, params)
    generator = torch.Generator().manual_seed(0)

    def batched() -> None:
        for start in range(0, args.n, args.batch_size):
            pipeline(images[start : start + args.batch_size], generator)

    def batched_warm_up() -> None:
        pipeline(images[: args.batch_size], generator)

    loader = DataLoader(PerImage(images, torchvision_pipeline(images.shape[-1])),
                        batch_size=args.batch_size, num_workers=args.workers,
                        persistent_workers=args.workers > 0)

    def per_image() -> None:
        for _ in loader:
            pass

    def per_image_warm_up() -> None:
        next(iter(loader))

    fast = images_per_second(batched, batched_warm_up, args.n, args.repeats)
    slow = images_per_second(per_image, per_image_warm_up, args.n, args.repeats)
    print(f"images: {args.n} × {tuple(images.shape[1:])}, batch {args.batch_size}, "
          f"threads {torch.get_num_threads()}, DataLoader workers {args.workers}")
    print(f"batched astroclr pipeline ({', '.join(names)}): {fast:,.0f} images/s")
    print(f"per-image torchvision v2 pipeline:            {slow:,.0f} images/s")
    print(f"ratio: {fast / slow:.1f}×")


if __name__ == "__main__":
    main()
