"""One command for a CUDA machine that is lent for minutes: everything the CPU cannot check.

In at most ~8 minutes (each stage has its own time limit, so one hang cannot eat the rest):

1. the CUDA-only tests (``pytest -m cuda``: the tests that skip without a CUDA device);
2. training throughput, bf16 autocast + channels_last, against the model-only bound:
   ResNet-18 at batch 256 (default recipe), and the ``gpu`` preset (its stem, batch 512);
3. embedding throughput against the forward-only bound (batch 2048, the preset's);
4. the input ceiling: batches read from a prepared memory-mapped cube by the training loader
   (pinned memory, non-blocking copies) and both views augmented on the device, no model;
5. peak GPU memory of a training step (ResNet-18, ``gpu`` preset, two views) at batch 256
   and 1024 (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``);
6. the extrapolated wall-clock of the reference study (377,000 galaxies × 1000 epochs,
   ResNet-18, 32 px) with the ``gpu`` preset, from stage 2's measured rate.

Without a CUDA device it says so in one line and exits 0.

Run: ``python benchmarks/gpu_check.py [--quick] [--out DIR]``; ``--out`` keeps each stage's
JSON. Paste the output into docs/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
#: the reference study: galaxies × epochs, ResNet-18 at 32 px
STUDY_GALAXIES = 377_000
STUDY_EPOCHS = 1000


def no_cuda_reason() -> str | None:
    """Why there is nothing to check here (None: a CUDA device is usable)."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        return f"torch cannot be imported ({exc})"
    if not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA"
        return f"torch {torch.__version__} ({built}) sees no CUDA device"
    return None


def stage(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def done(t0: float) -> None:
    print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)


def run_child(cmd: list[str], limit: float) -> tuple[int, str]:
    """Run a command with a time limit; its output is printed indented as it is returned."""
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc, out = 124, out + f"\n(stopped after its {limit:.0f} s limit)"
    lines = [ln for ln in out.splitlines() if ln.strip() and "Warning" not in ln]
    for line in lines[-12:]:
        print(f"   {line}")
    return rc, out


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def cuda_tests(limit: float) -> str:
    rc, out = run_child([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "-m", "cuda", "tests"], limit)
    last = [ln for ln in out.splitlines() if " passed" in ln or " failed" in ln
            or " error" in ln or "no tests ran" in ln]
    return (last[-1].strip("= ") if last else f"exit code {rc}")


def train_throughput(out: Path, name: str, limit: float, *extra: str) -> dict[str, Any]:
    path = out / f"train_{name}.json"
    run_child([sys.executable, str(BENCH / "train_throughput.py"), "--device", "cuda",
               "--steps", "30", "--warmup", "5", "--rounds", "1", "--skip-lightly", "--json", str(path),
               *extra],
              limit)
    return read_json(path)


def embed_throughput(out: Path, limit: float) -> dict[str, Any]:
    path = out / "embed.json"
    run_child([sys.executable, str(BENCH / "embed_throughput.py"), "--device", "cuda",
               "--backbone", "resnet18", "--n", "65536", "--batch-size", "2048",
               "--json", str(path)], limit)
    return read_json(path)


def synthetic_cube(path: Path, n: int, size: int = 32):
    """A prepared-like float32 (n, 3, size, size) ``.npy`` cube, opened as a memory map."""
    import numpy as np

    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 3, size, size))
    rng = np.random.default_rng(0)
    for a in range(0, n, 8192):
        cube[a:a + 8192] = rng.random((min(8192, n - a), 3, size, size), dtype=np.float32)
    cube.flush()
    del cube
    return np.load(path, mmap_mode="r")


def default_pipeline():
    from astroclr.config import DEFAULT_AUGMENT
    from astroclr.data.augment import build_pipeline, resolve_augment_config
    from astroclr.plugin.registry import get_registry
    from astroclr_sdss.sample import load_sample

    reg = get_registry()
    names, params = resolve_augment_config(reg, {"pipeline": list(DEFAULT_AUGMENT)})
    return build_pipeline(reg, load_sample().survey, names, params)


def input_ceiling(tmp: Path, batch_size: int, seconds: float) -> dict[str, float]:
    """Images/s of loader → pinned host batch → non-blocking copy → two augmented views."""
    import torch

    from astroclr.train.loader import training_loader

    images = synthetic_cube(tmp / "images.npy", 32768)  # 400 MB
    pipe = default_pipeline()
    device = torch.device("cuda")
    gen = torch.Generator(device=device).manual_seed(0)
    loader = training_loader(images, batch_size, seed=0)  # pin_memory on a CUDA machine

    def go(limit_s: float, with_augment: bool) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < limit_s:
            for batch in loader:
                x = batch.to(device, non_blocking=True)
                if with_augment:
                    pipe(x, gen)
                    pipe(x, gen)
                n += x.shape[0]
                if time.perf_counter() - t0 >= limit_s:
                    break
        torch.cuda.synchronize()
        return n / (time.perf_counter() - t0)

    go(1.0, True)  # warm-up: memmap pages, kernels, the pipeline's device constants
    torch.cuda.synchronize()
    loader_only = go(seconds / 2, False)
    with_aug = go(seconds / 2, True)
    # the augmentation alone, on a batch already on the device
    x = torch.from_numpy(images[:batch_size].copy()).to(device)
    torch.cuda.synchronize()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 3.0:
        pipe(x, gen)
        pipe(x, gen)
        n += batch_size
        if n % (20 * batch_size) == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    augment_only = n / (time.perf_counter() - t0)
    return {"loader": loader_only, "loader_and_augment": with_aug, "augment_only": augment_only}


def peak_memory(batch_size: int) -> float:
    """GiB allocated at peak over two training steps (gpu preset, ResNet-18, two views)."""
    import torch

    from astroclr import config as cfgmod
    from astroclr.config import assemble_config
    from astroclr.plugin.registry import get_registry
    from astroclr.session.build import build_backbone
    from astroclr.train.model import SimCLRModel

    reg = get_registry()
    cfg = cfgmod.resolve(assemble_config(None, [], preset="gpu", backbone="resnet18",
                                         batch_size=batch_size), reg)
    t = cfg.train
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = SimCLRModel(build_backbone(reg, cfg, 3, 32), default_pipeline(), t.representation_dim,
                        t.projection_hidden_dim, t.projection_dim, t.temperature, t.lr,
                        t.weight_decay, t.warmup_fraction, channels_last=True)
    model = model.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr)
    x = torch.rand(batch_size, 3, 32, 32, device=device)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):
        v1, v2 = model.views(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            z = model.head(model(torch.cat([v1, v2])))
            z1, z2 = z.chunk(2)
            loss = model.criterion(z1.float(), z2.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    del model, opt, x
    torch.cuda.empty_cache()
    return peak


def study_hours(views_per_second: float) -> float:
    """Hours of the reference study at a measured training rate (two views per galaxy)."""
    return STUDY_GALAXIES * STUDY_EPOCHS / (views_per_second / 2.0) / 3600.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="", help="keep each stage's JSON in this directory")
    p.add_argument("--quick", action="store_true", help="shorter stages (about 4 minutes)")
    args = p.parse_args()
    reason = no_cuda_reason()
    if reason is not None:
        print(f"gpu_check: no CUDA device, nothing to check: {reason}.")
        return 0

    import torch

    start = time.perf_counter()
    props = torch.cuda.get_device_properties(0)
    print(f"gpu_check: {torch.cuda.device_count()} × {props.name}, "
          f"{props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA "
          f"{torch.version.cuda}, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'NO'}")
    scale = 0.5 if args.quick else 1.0
    summary: dict[str, Any] = {"device": props.name}
    with tempfile.TemporaryDirectory() as tmpdir:
        out = Path(args.out) if args.out else Path(tmpdir)
        out.mkdir(parents=True, exist_ok=True)

        t0 = stage("1. CUDA-only tests (pytest -m cuda)")
        summary["tests"] = cuda_tests(90 * scale + 30)
        print(f"   -> {summary['tests']}")
        done(t0)

        t0 = stage("2. training, bf16 + channels_last, vs the model-only bound")
        r18 = train_throughput(out, "resnet18_b256", 60 * scale + 30, "--backbone", "resnet18",
                               "--batch-size", "256")
        gpu = train_throughput(out, "gpu_preset_b512", 60 * scale + 30, "--backbone",
                               "resnet18", "--batch-size", "512", "--preset", "gpu")
        summary["train_resnet18_b256"] = r18
        summary["train_gpu_preset_b512"] = gpu
        done(t0)

        t0 = stage("3. embedding (batch 2048) vs the forward-only bound")
        summary["embed"] = embed_throughput(out, 45 * scale + 30)
        done(t0)

        t0 = stage("4. input ceiling: memmap loader + pinned non-blocking copy + 2 views on device")
        try:
            ceiling = input_ceiling(Path(tmpdir), 512, 16 * scale)
            summary["input_ceiling_b512"] = ceiling
            for key, value in ceiling.items():
                print(f"   {key:20s} {value:12,.0f} images/s")
        except Exception as exc:  # report and go on: the other stages still count
            print(f"   FAILED: {type(exc).__name__}: {exc}")
        done(t0)

        t0 = stage("5. peak GPU memory of a training step (ResNet-18, gpu preset, two views)")
        for bs in (256, 1024):
            try:
                gib = peak_memory(bs)
                summary[f"peak_gib_b{bs}"] = gib
                print(f"   batch {bs:5d}: {gib:6.2f} GiB")
            except Exception as exc:
                print(f"   batch {bs:5d}: FAILED: {type(exc).__name__}: {exc}")
        done(t0)

        stage("summary")
        print(f"   CUDA-only tests: {summary['tests']}")
        for key, label in (("train_resnet18_b256", "ResNet-18, batch 256"),
                           ("train_gpu_preset_b512", "gpu preset, batch 512")):
            r = summary[key]
            if r.get("bound"):
                print(f"   {label:22s} bound {r['bound']:9.0f} views/s; default pipeline "
                      f"{r['default_pipeline'] / r['bound']:.3f} of it, no augmentation "
                      f"{r['no_augment'] / r['bound']:.3f}")
            else:
                print(f"   {label:22s} no result (see above)")
        e = summary["embed"]
        if e.get("bound"):
            print(f"   embedding              bound {e['bound']:9.0f} images/s; embed_to_npy "
                  f"{e['embed_to_npy'] / e['bound']:.3f}, embed_images "
                  f"{e['embed_images'] / e['bound']:.3f} of it")
        ceiling = summary.get("input_ceiling_b512")
        rate = gpu.get("default_pipeline")
        if ceiling and rate:
            print(f"   input ceiling / training rate (gpu preset): "
                  f"{ceiling['loader_and_augment'] / (rate / 2):.1f}x (below 1: input-bound)")
        if rate:
            hours = study_hours(rate)
            print(f"   reference study ({STUDY_GALAXIES:,} galaxies x {STUDY_EPOCHS} epochs, "
                  f"ResNet-18, 32 px, gpu preset): {hours:.1f} h at {rate / 2:,.0f} galaxies/s "
                  f"on one {props.name}")
        else:
            print("   reference study: no training rate measured, no extrapolation")
        print(f"   gpu_check took {time.perf_counter() - start:.0f} s")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
