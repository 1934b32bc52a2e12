"""Benchmark of ``astroclr prepare`` and of reading a prepared dataset back.

Prepares synthetic SDSS-like datasets of 20,000 and 200,000 galaxies (3 bands, 64×64 raw
cutouts → 2×2 binning → 32×32, per-image [0, 1]) with the real machinery
(:func:`astroclr.data.prepared.write_prepared`: worker processes over chunks, memory-mapped output),
then reads each back as training does (random batches of 256) and as embedding does (one
sequential pass). Each step runs in its own subprocess so its peak memory is its own:

- ``maxrss``: ``ru_maxrss`` of the process (counts file-backed pages of the memory map that
  were touched, which the kernel can drop at will);
- ``anon``: peak anonymous memory (``RssAnon``), what the process really holds;
- ``workers``: largest ``ru_maxrss`` among prepare's worker processes;
- ``with release_pages``: peak VmRSS of a sequential pass that unmaps touched pages every 8
  batches (:func:`astroclr.data.prepared.release_pages`).

Usage::

    python benchmarks/prepare.py [--sizes 20000 200000] [--dir /tmp/astroclr-bench] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BATCH = 256
RANDOM_BATCHES = 400


class SyntheticSource:
    """Cheap synthetic galaxies: a bank of Gaussian templates, random flux, white noise."""

    def __init__(self, n: int) -> None:
        from astropy.table import Table

        from astroclr.data.galaxies import SurveyInfo
        from astroclr.data.preprocess import Preprocessing

        self.catalog = Table({"id": np.arange(n, dtype=np.int64),
                              "label": (np.arange(n) % 2).astype(np.int64)})
        self.preprocessing = Preprocessing(bin=2)
        self.survey = SurveyInfo.create("sdss-synthetic", ("g", "r", "i"), 0.792,
                                        {"g": 1.44, "r": 1.32, "i": 1.26})
        self.image_shape = (3, 32, 32)
        self.label_names = ("a", "b")
        self.raw_size = 64
        self.pre_skipped = []
        self.fingerprint = {"synthetic": n}

    def read_chunk(self, start: int, stop: int):
        from astroclr.data.prepared import ChunkResult

        rng = np.random.default_rng(start)
        yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
        sig = rng.uniform(2, 6, (16, 1, 1)).astype(np.float32)
        bank = np.exp(-((xx - 31.5) ** 2 + (yy - 31.5) ** 2)[None] / (2 * sig**2))
        k = stop - start
        flux = rng.uniform(1, 10, (k, 3, 1, 1)).astype(np.float32)
        raw = bank[rng.integers(0, 16, k)][:, None] * flux
        # noise from a small bank, shifted per galaxy: cheap, and every image still differs
        noise = rng.standard_normal((64, 3, 64, 64), dtype=np.float32) * 0.05
        pick = rng.integers(0, 64, k)
        shift = rng.integers(0, 64, k)
        for i in range(k):
            raw[i] += np.roll(noise[pick[i]], shift[i], axis=-1)
        images = self.preprocessing.apply(raw)
        return ChunkResult(images, np.arange(start, stop, dtype=np.int64))


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def _anon_kb() -> int:
    return _status_kb("RssAnon:")


def child_prepare(n: int, out: Path) -> dict:
    from astroclr.data.prepare import write_prepared
    from astroclr.data.prepared import PrepareSource

    source = type("Synthetic", (SyntheticSource, PrepareSource), {})(n)
    t0 = time.perf_counter()
    summary = write_prepared(source, out, workers=None, progress=False, chunk_size=1024)
    seconds = time.perf_counter() - t0
    self_ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_ru = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"n": n, "seconds": seconds, "galaxies_per_s": n / seconds, "maxrss_mb": self_ru / 1024,
            "workers_maxrss_mb": workers_ru / 1024, "kept": summary["kept"],
            "gb_on_disk": (out / "images.npy").stat().st_size / 1e9}


def child_read(out: Path) -> dict:
    from astroclr.data.prepared import open_prepared

    anon_peak = _anon_kb()
    g = open_prepared(out)
    n = len(g)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    total = 0.0
    for _ in range(RANDOM_BATCHES):  # training-like: shuffled batches
        idx = np.sort(rng.choice(n, BATCH, replace=False))
        batch = np.asarray(g.images[idx])
        total += float(batch.mean())
        anon_peak = max(anon_peak, _anon_kb())
    t_random = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _, batch in g.batches(1024):  # embedding-like: one sequential pass
        total += float(batch.mean())
        anon_peak = max(anon_peak, _anon_kb())
    t_seq = time.perf_counter() - t0
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # A second sequential pass, unmapping touched pages every 8 batches: the RSS a loader that
    # calls astroclr.data.prepared.release_pages would have (sampled VmRSS peak).
    from astroclr.data.prepared import release_pages

    release_pages(g.images)
    rss_peak = _status_kb("VmRSS:")
    for k, (_, batch) in enumerate(g.batches(1024)):
        total += float(batch.mean())
        rss_peak = max(rss_peak, _status_kb("VmRSS:"))
        if k % 8 == 7:
            release_pages(g.images)
    return {"n": n, "random_batches_per_s": RANDOM_BATCHES / t_random,
            "random_images_per_s": RANDOM_BATCHES * BATCH / t_random,
            "sequential_images_per_s": n / t_seq,
            "maxrss_mb": maxrss, "anon_peak_mb": anon_peak / 1024,
            "released_rss_peak_mb": rss_peak / 1024, "checksum": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/astroclr-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the prepared datasets")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        step, arg = args.child
        out = args.dir / f"n{arg}"
        result = child_prepare(int(arg), out) if step == "prepare" else child_read(out)
        print(json.dumps(result))
        return
    free = shutil.disk_usage(args.dir.parent if not args.dir.exists() else args.dir).free / 1e9
    need = sum(args.sizes) * 3 * 32 * 32 * 4 / 1e9 * 1.1
    if free < need:
        sys.exit(f"need ~{need:.1f} GB free under {args.dir}, have {free:.1f} GB")
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        shutil.rmtree(args.dir / f"n{n}", ignore_errors=True)
        res = {}
        for step in ("prepare", "read"):
            proc = subprocess.run([sys.executable, __file__, "--dir", str(args.dir), "--child",
                                   step, str(n)], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{step} {n} failed:\n{proc.stderr}")
            res[step] = json.loads(proc.stdout.strip().splitlines()[-1])
        # the parent's view of its children: the largest child so far
        res["children_maxrss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rows.append(res)
        p, r = res["prepare"], res["read"]
        print(f"n={n:>7,}: prepare {p['seconds']:6.1f} s = {p['galaxies_per_s']:8,.0f} gal/s "
              f"({p['gb_on_disk']:.2f} GB), RSS writer {p['maxrss_mb']:.0f} MB, workers "
              f"{p['workers_maxrss_mb']:.0f} MB | read: random {r['random_images_per_s']:,.0f} img/s, "
              f"sequential {r['sequential_images_per_s']:,.0f} img/s, maxRSS {r['maxrss_mb']:.0f} MB "
              f"(anon peak {r['anon_peak_mb']:.0f} MB; with release_pages "
              f"{r['released_rss_peak_mb']:.0f} MB)", flush=True)
        if not args.keep:
            shutil.rmtree(args.dir / f"n{n}", ignore_errors=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
