"""Peak memory of training from a prepared (memory-mapped) dataset: 20k vs 200k galaxies.

Writes synthetic prepared cubes (float32 (N, 3, 32, 32) ``images.npy``, 0.25 GB and 2.5 GB)
once, then for each N trains a few steps in a fresh process and reports its peak RSS
(``VmHWM``). Training reads one batch at a time from the memory map, so the peak should
not grow with N beyond the catalogue (a few bytes per galaxy).

The cube is opened with ``astroclr.data.prepared.open_prepared`` when a prepared directory is
given (``--prepared DIR``); the synthetic cubes are opened as ``Galaxies`` around
``np.load(path, mmap_mode="r")``.

Run: ``python benchmarks/memory.py [--sizes 20000 200000] [--steps 8] [--device cuda]
[--dir /tmp/astroclr-memory]`` (the cubes are kept in ``--dir`` for the next run).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r'''
import json, resource, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
args = json.loads(sys.argv[1])
from astroclr.data.galaxies import Galaxies, SurveyInfo
from astroclr import config as cfgmod
from astroclr.plugin.registry import get_registry
from astroclr.config import assemble_config
from astroclr.runs.build import build_training
import astroclr.runs.build as build
from astroclr.train.devices import quiet_lightning
from astroclr.runs.rundir import RunDir
from astroclr.train.trainer import fit

def status(key):  # kB; VmHWM is this process's peak RSS (ru_maxrss survives exec from the parent)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0

quiet_lightning()
before = status("VmHWM")
if args["prepared"]:
    from astroclr.data.prepared import open_prepared
    galaxies = open_prepared(args["prepared"])
else:
    images = np.load(args["images"], mmap_mode="r")
    survey = SurveyInfo.create("sdss", ["g", "r", "i"], 0.792, {"g": 1.44, "r": 1.32, "i": 1.26})
    from astropy.table import Table
    galaxies = Galaxies(images, Table({"id": np.arange(len(images))}), survey)
opened = status("VmHWM")
build.load_dataset = lambda registry, cfg: galaxies
sets = [f"train.accelerator={'gpu' if args['device'] == 'cuda' else 'cpu'}",
        f"train.max_steps={args['steps']}", "run.evaluators=[]", "train.checkpoint_every_n_steps=0",
        "train.time_budget=''"]
cfg = cfgmod.resolve(assemble_config(None, sets, backbone="smallcnn",
                                     batch_size=args["batch_size"]), get_registry())
_, model, _ = build_training(get_registry(), cfg)
t0 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    summary = fit(model, galaxies, cfg.train, 0, RunDir(tmp), False, None)
peak = status("VmHWM")
print(json.dumps({"n": len(galaxies), "rss_after_import_mb": before / 1024,
                  "rss_anon_end_mb": status("RssAnon") / 1024, "rss_file_end_mb": status("RssFile") / 1024,
                  "rss_after_open_mb": opened / 1024, "peak_rss_mb": peak / 1024,
                  "steps": summary["steps"], "seconds": time.perf_counter() - t0}))
'''


def make_cube(path: Path, n: int, size: int = 32) -> None:
    if path.is_file() and np.load(path, mmap_mode="r").shape == (n, 3, size, size):
        return
    tmp = path.with_name(path.name + ".partial.npy")
    cube = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, 3, size, size))
    rng = np.random.default_rng(n)
    for a in range(0, n, 8192):  # written in chunks: this process stays small too
        cube[a:a + 8192] = rng.random((min(8192, n - a), 3, size, size), dtype=np.float32)
    cube.flush()
    del cube
    tmp.replace(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "astroclr-memory"))
    p.add_argument("--prepared", nargs="*", default=[], help="prepared dataset directories "
                   "(astroclr prepare) to measure instead of synthetic cubes")
    args = p.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    jobs = [{"prepared": d, "images": None} for d in args.prepared] or []
    for n in ([] if args.prepared else args.sizes):
        t0 = time.perf_counter()
        path = root / f"images_{n}.npy"
        make_cube(path, n)
        print(f"cube {path}: {path.stat().st_size / 1e9:.2f} GB ({time.perf_counter() - t0:.0f} s)")
        jobs.append({"prepared": None, "images": str(path)})
    results = []
    for job in jobs:
        job.update(steps=args.steps, batch_size=args.batch_size, device=args.device)
        r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(job)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            sys.exit(r.stderr[-3000:])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        results.append(res)
        print(f"N = {res['n']:>8,}: peak RSS {res['peak_rss_mb']:7.0f} MB (after imports "
              f"{res['rss_after_import_mb']:.0f} MB, after opening {res['rss_after_open_mb']:.0f}"
              f" MB; at the end anonymous {res['rss_anon_end_mb']:.0f} MB, file-backed "
              f"{res['rss_file_end_mb']:.0f} MB), {res['steps']} steps in {res['seconds']:.0f} s")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        print(f"peak RSS ratio N={b['n']:,} / N={a['n']:,}: {b['peak_rss_mb'] / a['peak_rss_mb']:.3f}"
              f" (dataset ratio {b['n'] / a['n']:.0f}x); growth {b['peak_rss_mb'] - a['peak_rss_mb']:.0f} MB")
    print(f"this process (cube writer): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
