"""``astroclr predict`` at scale: images/s against the forward-only bound, and peak RSS against N.

Builds a prepared synthetic dataset of N galaxies (the real ``write_prepared`` machinery, the
synthetic source of ``benchmarks/prepare.py``: 3 bands, 64×64 raw → 32×32), a tiny run on the
embedded sample and a classifier from it (probe mode: its weights do not matter for speed),
then, each in its own subprocess so that its peak memory is its own:

- ``bound``: the classifier's forward pass (eval, no_grad) on one pre-made batch, repeated as
  many times as ``predict`` has batches: what the network alone costs; measured before and
  after ``predict``, the faster kept;
- ``predict``: ``astroclr.classify.apply.predict_dataset`` on the prepared directory, as the
  command runs it (Lightning's predict loop, shard writer, merge, the FITS table streamed),
  timed from the call to the written table (Lightning's import, once per process, timed
  apart and shown in a second ratio); its ``ru_maxrss`` and peak ``RssAnon``.

Usage::

    python benchmarks/predict_throughput.py [--sizes 10000 100000] [--backbone resnet18]
        [--dir /tmp/astroclr-predict-bench] [--keep]

The machine may be shared: compare the ratio, measured side by side, not absolute rates.
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

HERE = Path(__file__).resolve().parent


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def make_dataset(n: int, out: Path) -> None:
    sys.path.insert(0, str(HERE))
    from prepare import SyntheticSource

    from astroclr.data.prepare import write_prepared

    write_prepared(SyntheticSource(n), out, workers=2, progress=False, chunk_size=4096)


def make_classifier(root: Path, backbone: str) -> Path:
    import astroclr

    run = root / "run"
    if not (run / "model.pt").is_file():
        astroclr.run(out=run, backbone=backbone, epochs=1, progress=False, overwrite=True,
                     sets=["dataset.limit=300", "train.max_steps=2", "run.evaluators=[]"])
    clf = root / "clf"
    if not (clf / "classifier.json").is_file():
        astroclr.load(run, device="cpu").finetune(clf, mode="probe", labels=200)
    return clf


def bound(clf: Path, prepared: Path, batch: int) -> dict:
    import numpy as np
    import torch

    import astroclr

    net = astroclr.load_classifier(clf, device="cpu").net.eval()
    images = np.load(prepared / "images.npy", mmap_mode="r")
    n = len(images)
    x = torch.from_numpy(np.array(images[:batch]))
    batches = -(-n // batch)
    with torch.no_grad():
        torch.softmax(net(x), 1)
        t0 = time.perf_counter()
        for _ in range(batches):
            torch.softmax(net(x), 1).numpy()
        seconds = time.perf_counter() - t0
    return {"images_per_s": batches * batch / seconds, "seconds": seconds}


def predict(clf: Path, prepared: Path, out: Path) -> dict:
    from astroclr.classify.apply import predict_dataset

    # Lightning's import (3-4 s on a 2-core machine: scipy, torchmetrics, torch.distributed) is
    # paid once per process whatever N is: reported apart from the rate
    t0 = time.perf_counter()
    import lightning  # noqa: F401

    imports = time.perf_counter() - t0
    t0 = time.perf_counter()
    predict_dataset(clf, out, "sdss", ["dataset.input=prepared", f"dataset.path={prepared}",
                                       "dataset.limit=0"], accelerator="cpu")
    seconds = time.perf_counter() - t0
    from astropy.io import fits

    with fits.open(out, memmap=True) as hdul:
        n = int(hdul[1].header["NAXIS2"])
    return {"images_per_s": n / seconds, "seconds": seconds, "rows": n, "import_seconds": imports,
            "end_to_end_images_per_s": n / (seconds + imports),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "anon_mb": _status_kb("RssAnon") / 1024}


def child(argv: list[str]) -> None:
    what, clf, prepared = argv[0], Path(argv[1]), Path(argv[2])
    if what == "bound":
        result = bound(clf, prepared, int(argv[3]))
    else:
        result = predict(clf, prepared, Path(argv[3]))
    print(json.dumps(result))


def _sub(*args: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--dir", type=Path, default=Path("/tmp/astroclr-predict-bench"))
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    clf = make_classifier(args.dir, args.backbone)
    batch = 512  # train.embed_batch_size, what predict uses by default
    rows = []
    for n in args.sizes:
        prepared = args.dir / f"prepared{n}"
        if not (prepared / "meta.json").is_file():
            make_dataset(n, prepared)
        out = args.dir / f"pred{n}.fits"
        # the bound before and after, the faster one kept: drift of a shared machine's speed
        # during the run must not favour predict
        b1 = _sub("bound", str(clf), str(prepared), str(batch))
        r = _sub("predict", str(clf), str(prepared), str(out))
        b2 = _sub("bound", str(clf), str(prepared), str(batch))
        b = max(b1, b2, key=lambda x: x["images_per_s"])
        rows.append((n, b, r))
        print(f"N={n:>7}: bound {b1['images_per_s']:8.0f} / {b2['images_per_s']:8.0f} images/s | predict "
              f"{r['images_per_s']:8.0f} images/s, ratio {r['images_per_s'] / b['images_per_s']:.3f}"
              f" (with Lightning's import, {r['import_seconds']:.1f} s: "
              f"{r['end_to_end_images_per_s'] / b['images_per_s']:.3f})"
              f" | predict peak RSS {r['maxrss_mb']:.0f} MB (anonymous at the end "
              f"{r['anon_mb']:.0f} MB)", flush=True)
    if len(rows) > 1:
        (n0, _, r0), (n1, _, r1) = rows[0], rows[-1]
        print(f"peak RSS N={n1} / N={n0}: {r1['maxrss_mb'] / r0['maxrss_mb']:.2f} "
              f"(N grew {n1 / n0:.0f}x)")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
