"""The two inference engines side by side, on the same input in one process.

- ``threads``: ``astroclr.evaluate.embed.embed_to_npy`` (the run's embedding: one model copy
  per device in threads, a resumable ``.npy`` memory map);
- ``lightning``: ``astroclr.classify.infer.infer`` (``embed`` and ``predict``: Lightning's
  predict loop, a shard per process, merged), timed from the call, trainer set-up included
  (Lightning's import, once per process, is paid before and shown apart).

Both read the same memory-mapped cube (the embedded SDSS sample, 4,014 galaxies at 32 px by
default), write fresh outputs each time (no resume), and are interleaved, best of ``--repeat``:
the machine's load changes between measurements. The outputs are checked equal.

Run: ``python benchmarks/engine_compare.py [--backbones resnet18 smallcnn] [--repeat 3]``

Measured (2 shared CPU cores, load average 7.7-8.1 during the run, batch 512, best of 3):
resnet18 threads 484 / Lightning 488 images/s, smallcnn 376 / 389 images/s: speed ratio
threads/Lightning 0.99 and 0.97, within the runs' own spread (8.2-11.9 s per pass), so neither
engine is faster on the CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def sample_images(out: Path, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The embedded SDSS sample as the run prepares it (32 px), memory-mapped from ``out``."""
    from astroclr import config as cfgmod
    from astroclr.config import assemble_config
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import load_dataset

    reg = get_registry()
    sets = [f"dataset.limit={limit}"] if limit else []
    galaxies = load_dataset(reg, cfgmod.resolve(assemble_config(None, sets), reg))
    np.save(out, np.asarray(galaxies.images, dtype=np.float32))
    return np.load(out, mmap_mode="r"), np.asarray(galaxies.ids)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbones", nargs="+", default=["resnet18", "smallcnn"])
    p.add_argument("--limit", type=int, default=0, help="galaxies of the sample (0: all)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = p.parse_args()
    t0 = time.perf_counter()
    import lightning  # noqa: F401

    lightning_import = time.perf_counter() - t0
    from embed_throughput import encoder

    from astroclr import config as cfgmod
    from astroclr.classify.infer import infer
    from astroclr.evaluate.embed import embed_to_npy, model_fingerprint
    from astroclr.plugin.registry import get_registry

    train = cfgmod.resolve({"run": {"evaluators": []}, "train": {"accelerator": "cpu"}},
                           get_registry()).train
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images, ids = sample_images(tmp / "images.npy", args.limit)
        n = len(images)
        print(f"{n} galaxies {images.shape[2]}x{images.shape[3]} px, batch {args.batch_size}, "
              f"torch threads {torch.get_num_threads()}, Lightning import {lightning_import:.1f} s")
        for backbone in args.backbones:
            model = encoder(backbone, int(images.shape[2]))
            times: dict[str, list[float]] = {"threads": [], "lightning": []}
            outs = {}
            for r in range(args.repeat):
                t0 = time.perf_counter()
                outs["threads"] = np.array(embed_to_npy(model, images, tmp / f"t{backbone}{r}.npy",
                                                        args.batch_size, "cpu"))
                times["threads"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                outs["lightning"] = np.array(infer(model, images, ids, tmp / f"l{backbone}{r}",
                                                   train, args.batch_size,
                                                   fingerprint=model_fingerprint(model)))
                times["lightning"].append(time.perf_counter() - t0)
            np.testing.assert_allclose(outs["lightning"], outs["threads"], rtol=1e-4, atol=1e-5)
            best = {k: min(v) for k, v in times.items()}
            results[backbone] = {"n": n, "seconds": times, "images_per_s":
                                 {k: n / v for k, v in best.items()},
                                 "threads_over_lightning": best["lightning"] / best["threads"]}
            print(f"{backbone:>9}: threads {n / best['threads']:8.0f} images/s "
                  f"(runs {', '.join(f'{s:.2f}' for s in times['threads'])} s) | lightning "
                  f"{n / best['lightning']:8.0f} images/s (runs "
                  f"{', '.join(f'{s:.2f}' for s in times['lightning'])} s) | threads/lightning "
                  f"speed {best['lightning'] / best['threads']:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"lightning_import_s": lightning_import,
                                               "batch_size": args.batch_size, **results},
                                              indent=1))


if __name__ == "__main__":
    main()
