"""Embedding throughput: astroclr's embedding on a memory-mapped cube vs the forward-only bound.

- bound: the encoder's forward pass (eval, no_grad; bf16 autocast on CUDA as astroclr does) on
  one pre-made batch already on the device, repeated;
- astroclr: the engine (``astroclr.train.infer.infer``: Lightning's predict loop, what a run,
  ``embed`` and ``predict`` use) reading a memory-mapped ``images.npy`` batch by batch and
  writing memory-mapped shards, merged; and ``embed_images`` (an array held in memory, the
  Python API's ``model.embed``).

Run: ``python benchmarks/embed_throughput.py [--device cuda] [--n 2048] [--batch-size 512]``
Prints images/s of each and the ratios to the bound (target >= 0.95).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def encoder(backbone: str, size: int):
    from astroclr import config as cfgmod
    from astroclr.config import assemble_config
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import build_backbone
    from astroclr.train.model import Encoder

    reg = get_registry()
    cfg = cfgmod.resolve(assemble_config(None, [], backbone=backbone), reg)
    torch.manual_seed(0)
    return Encoder(build_backbone(reg, cfg, 3, size), cfg.train.representation_dim).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--backbone", default="smallcnn")
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from astroclr.evaluate.embed import embed_images
    from astroclr.resolved import TrainOptions
    from astroclr.train.infer import infer

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    model = encoder(args.backbone, args.size).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                         shape=(args.n, 3, args.size, args.size))
        rng = np.random.default_rng(0)
        for a in range(0, args.n, 4096):
            cube[a:a + 4096] = rng.random((min(4096, args.n - a), 3, args.size, args.size),
                                          dtype=np.float32)
        cube.flush()
        del cube
        images = np.load(path, mmap_mode="r")

        x = torch.from_numpy(np.array(images[:args.batch_size])).to(device)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        batches = -(-args.n // args.batch_size)

        def forward_only() -> float:
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                model(x)
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(batches):
                    model(x).float().cpu()
                if cuda:
                    torch.cuda.synchronize()
                return batches * args.batch_size / (time.perf_counter() - t0)

        train = TrainOptions.check({"accelerator": "gpu" if cuda else "cpu", "devices": "1"})
        ids = np.arange(args.n)

        def to_npy() -> float:
            t0 = time.perf_counter()
            out = infer(model, images, ids, Path(tmp) / f"work{time.time_ns()}", train,
                        args.batch_size)
            assert out is not None and out.shape[0] == args.n
            return args.n / (time.perf_counter() - t0)

        def in_memory() -> float:
            t0 = time.perf_counter()
            embed_images(model, images, args.batch_size, device, channels_last=cuda)
            return args.n / (time.perf_counter() - t0)

        print(f"device {args.device}, backbone {args.backbone}, {args.n} images "
              f"{args.size}x{args.size}, batch {args.batch_size}, torch threads "
              f"{torch.get_num_threads()}")
        # interleaved, best of two: the machine's load changes between measurements
        results = {"bound": [], "npy": [], "mem": []}
        for _ in range(2):
            results["bound"].append(forward_only())
            results["npy"].append(to_npy())
            results["mem"].append(in_memory())
        b, n, m = (max(results[k]) for k in ("bound", "npy", "mem"))
        print(f"forward-only bound:                 {b:10.1f} images/s")
        print(f"astroclr engine (memmap shards):    {n:10.1f} images/s   ratio {n / b:.3f}")
        print(f"astroclr embed_images (in memory):  {m:10.1f} images/s   ratio {m / b:.3f}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "device": args.device, "backbone": args.backbone, "batch_size": args.batch_size,
                "bound": b, "engine": n, "embed_images": m}, indent=1))


if __name__ == "__main__":
    main()
