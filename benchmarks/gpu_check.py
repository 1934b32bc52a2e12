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

Without a CUDA device it says so in one line and exits 0. A stage that fails prints its
traceback, the others still run, and the script exits 1 at the end.

``--dry-run`` runs every stage on the CPU at toy sizes (seconds; the CUDA-only tests are only
collected), so the script is known to work before a GPU is lent: ``tests/test_gpu_check.py``
runs it in the suite.

Run: ``python benchmarks/gpu_check.py [--quick] [--dry-run] [--out DIR]``; ``--out`` keeps each
stage's JSON. Paste the output into docs/gpu.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import runpy
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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


class StageFailed(Exception):
    """A stage's own check failed (a child's exit code, a missing result file)."""


class Stages:
    """Runs the stages one after another; a failed stage prints its traceback and the others
    still run, and :attr:`failed` makes the script's exit code 1 at the end."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def run(self, title: str, fn: Callable[..., Any], *args: Any) -> Any:
        print(f"\n== {title}", flush=True)
        t0 = time.perf_counter()
        try:
            return fn(*args)
        except Exception:
            traceback.print_exc(file=sys.stdout)
            print(f"   FAILED: {title}", flush=True)
            self.failed.append(title)
            return None
        finally:
            print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)


def show_tail(out: str) -> None:
    lines = [ln for ln in out.splitlines() if ln.strip() and "Warning" not in ln]
    for line in lines[-12:]:
        print(f"   {line}")


def run_child(argv: list[str], limit: float, in_process: bool) -> str:
    """Run a benchmark script (``argv[0]`` a path) or a module (``["-m", name, ...]``); returns
    its output and raises :class:`StageFailed` on a non-zero exit.

    On the GPU each child is a process with a time limit, so one hang cannot eat the machine's
    minutes. The dry run calls the same script with the same arguments in this process (torch
    and Lightning are imported once instead of once per stage, which is most of a toy run).
    """
    if in_process:
        rc, out = _in_process(argv)
    else:
        cmd = [sys.executable, *argv]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit)
            rc, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            rc, out = 124, partial + f"\n(stopped after its {limit:.0f} s limit)"
    show_tail(out)
    if rc != 0:
        raise StageFailed(f"{' '.join(argv)} exited with code {rc}")
    return out


def _in_process(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    saved_argv = sys.argv
    rc = 0
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            try:
                if argv[0] == "-m":
                    sys.argv = [argv[1], *argv[2:]]
                    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
                else:
                    sys.argv = list(argv)
                    runpy.run_path(str(ROOT / argv[0]), run_name="__main__")
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        show_tail(buf.getvalue())
        raise
    finally:
        sys.argv = saved_argv
    return rc, buf.getvalue()


def read_result(path: Path) -> dict[str, Any]:
    """A child's JSON result; a missing or unreadable one fails the stage."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StageFailed(f"no result in {path}: {exc}") from exc


@dataclass(frozen=True)
class Sizes:
    """How big each stage is: the GPU's sizes, or toy ones for ``--dry-run`` on the CPU."""

    device: str
    train_steps: int
    train_warmup: int
    train_images: int
    train_batches: tuple[int, int]  # ResNet-18 alone, the gpu preset
    embed_images: int
    embed_batch: int
    cube_images: int
    ceiling_batch: int
    ceiling_seconds: float
    memory_batches: tuple[int, ...]
    limits: float  # multiplies every child's time limit
    image_size: int = 32

    @classmethod
    def gpu(cls, quick: bool) -> "Sizes":
        scale = 0.5 if quick else 1.0
        return cls("cuda", 30, 5, 4096, (256, 512), 65536, 2048, 32768, 512, 16 * scale,
                   (256, 1024), scale)

    @classmethod
    def dry_run(cls) -> "Sizes":
        # TrainingProgress reports images/s from its third step on: 1 warm-up + 2 timed.
        return cls("cpu", 2, 1, 32, (4, 4), 32, 16, 64, 16, 0.5, (4,), 1.0, image_size=16)


def cuda_tests(sizes: Sizes, dry: bool) -> str:
    # The dry run collects the CUDA-only tests (they import, they are marked, there are some);
    # on the CPU they would only be skipped.
    argv = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda"]
    argv += ["--collect-only", "tests/test_cuda.py"] if dry else ["tests"]
    out = run_child(argv, 90 * sizes.limits + 30, dry)
    last = [ln for ln in out.splitlines() if " passed" in ln or " failed" in ln
            or " error" in ln or " collected" in ln or "no tests ran" in ln]
    return last[-1].strip("= ") if last else "no summary line"


def train_throughput(out: Path, name: str, sizes: Sizes, dry: bool, *extra: str
                     ) -> dict[str, Any]:
    path = out / f"train_{name}.json"
    run_child(["benchmarks/train_throughput.py", "--device", sizes.device,
               "--steps", str(sizes.train_steps), "--warmup", str(sizes.train_warmup),
               "--n", str(sizes.train_images), "--size", str(sizes.image_size),
               "--rounds", "1", "--skip-lightly",
               "--json", str(path), *extra], 60 * sizes.limits + 30, dry)
    result = read_result(path)
    if not result.get("bound") or not result.get("default_pipeline"):
        raise StageFailed(f"{path.name}: no training rate measured ({result})")
    return result


def train_stage(out: Path, sizes: Sizes, dry: bool) -> dict[str, dict[str, Any]]:
    b_r18, b_gpu = sizes.train_batches
    results = {"train_gpu_preset_b512": train_throughput(
        out, f"gpu_preset_b{b_gpu}", sizes, dry, "--backbone", "resnet18",
        "--batch-size", str(b_gpu), "--preset", "gpu")}
    # The dry run skips the plain ResNet-18 setting: the same script and code path, without the
    # preset, which would double the stage's time on a CPU (ResNet-18's optimiser step alone).
    if not dry:
        results["train_resnet18_b256"] = train_throughput(
            out, f"resnet18_b{b_r18}", sizes, dry, "--backbone", "resnet18",
            "--batch-size", str(b_r18))
    return results


def embed_throughput(out: Path, sizes: Sizes, dry: bool) -> dict[str, Any]:
    path = out / "embed.json"
    run_child(["benchmarks/embed_throughput.py", "--device", sizes.device,
               "--backbone", "resnet18", "--n", str(sizes.embed_images),
               "--size", str(sizes.image_size),
               "--batch-size", str(sizes.embed_batch), "--json", str(path)],
              45 * sizes.limits + 30, dry)
    result = read_result(path)
    if not result.get("bound"):
        raise StageFailed(f"{path.name}: no embedding rate measured ({result})")
    return result


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


def sample_survey():
    from astroclr_sdss.sample import load_sample

    return load_sample(limit=8).survey


def default_pipeline():
    from astroclr.config import DEFAULT_AUGMENT
    from astroclr.data.augment import build_pipeline, resolve_augment_config
    from astroclr.plugin.registry import get_registry

    reg = get_registry()
    names, params = resolve_augment_config(reg, {"pipeline": list(DEFAULT_AUGMENT)})
    return build_pipeline(reg, sample_survey(), names, params)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def input_ceiling(tmp: Path, sizes: Sizes) -> dict[str, float]:
    """Images/s of loader → pinned host batch → non-blocking copy → two augmented views."""
    import torch

    from astroclr.train.loader import training_loader

    batch_size, seconds = sizes.ceiling_batch, sizes.ceiling_seconds
    images = synthetic_cube(tmp / "images.npy", sizes.cube_images,
                            sizes.image_size)  # 400 MB on the GPU
    pipe = default_pipeline()
    device = torch.device(sizes.device)
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
        sync(device)
        return n / (time.perf_counter() - t0)

    go(min(1.0, seconds), True)  # warm-up: memmap pages, kernels, the pipeline's constants
    sync(device)
    loader_only = go(seconds / 2, False)
    with_aug = go(seconds / 2, True)
    # the augmentation alone, on a batch already on the device
    x = torch.from_numpy(images[:batch_size].copy()).to(device)
    sync(device)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < min(3.0, seconds):
        pipe(x, gen)
        pipe(x, gen)
        n += batch_size
        if n % (20 * batch_size) == 0:
            sync(device)
    sync(device)
    augment_only = n / (time.perf_counter() - t0)
    ceiling = {"loader": loader_only, "loader_and_augment": with_aug,
               "augment_only": augment_only}
    for key, value in ceiling.items():
        print(f"   {key:20s} {value:12,.0f} images/s")
    return ceiling


def training_model(batch_size: int, size: int, device_type: str):
    """The ``gpu`` preset's training module (ResNet-18, default method and augmentations),
    built as a run builds it (:func:`astroclr.runs.build.build_training`, minus the data)."""
    import numpy as np
    import torch

    from astroclr import config as cfgmod
    from astroclr.config import assemble_config
    from astroclr.data.augment import pipeline_from_config
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import build_backbone, build_method, view_pipelines
    from astroclr.train.model import Encoder, SelfSupervisedModel

    reg = get_registry()
    accelerator = "gpu" if device_type == "cuda" else "cpu"
    cfg = cfgmod.resolve(assemble_config(None, [f"train.accelerator={accelerator}"], preset="gpu",
                                         backbone="resnet18", batch_size=batch_size), reg)
    t = cfg.train
    survey = sample_survey()
    torch.manual_seed(0)
    images = np.random.default_rng(0).random((8, 3, size, size), dtype=np.float32)
    pipeline = pipeline_from_config(reg, survey, cfg.augment)
    encoder = Encoder(build_backbone(reg, cfg, 3, size), t.representation_dim)
    method = build_method(reg, cfg, encoder)
    pipelines = view_pipelines(reg, cfg, survey, pipeline, method.views, images)
    model = SelfSupervisedModel(encoder, method, pipelines, t.lr, t.weight_decay,
                                t.warmup_fraction, seed=cfg.run.seed, channels_last=t.on_gpu)
    return model, t


def peak_memory(sizes: Sizes) -> dict[str, float | None]:
    """GiB allocated at peak over two training steps per batch size (None on the CPU, which
    has no such counter: the dry run checks that the step runs)."""
    import torch

    device = torch.device(sizes.device)
    cuda = device.type == "cuda"
    peaks: dict[str, float | None] = {}
    for batch_size in sizes.memory_batches:
        model, t = training_model(batch_size, sizes.image_size, device.type)
        if cuda:
            model = model.to(device, memory_format=torch.channels_last)
        model = model.to(device).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=t.lr)
        x = torch.rand(batch_size, 3, sizes.image_size, sizes.image_size, device=device)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(2):
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=t.lightning_precision.startswith("bf16")):
                loss = model.batch_loss(x)  # the method's views and loss, as in training
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if not torch.isfinite(loss.detach()).all():
            raise StageFailed(f"batch {batch_size}: the loss is not finite ({loss.item()})")
        if cuda:
            torch.cuda.synchronize()
            peaks[f"peak_gib_b{batch_size}"] = torch.cuda.max_memory_allocated(device) / 2**30
            print(f"   batch {batch_size:5d}: {peaks[f'peak_gib_b{batch_size}']:6.2f} GiB")
        else:
            peaks[f"peak_gib_b{batch_size}"] = None
            print(f"   batch {batch_size:5d}: two steps ran, loss {loss.item():.3f} "
                  "(no memory counter on the CPU)")
        del model, opt, x
        if cuda:
            torch.cuda.empty_cache()
    return peaks


def study_hours(views_per_second: float) -> float:
    """Hours of the reference study at a measured training rate (two views per galaxy)."""
    return STUDY_GALAXIES * STUDY_EPOCHS / (views_per_second / 2.0) / 3600.0


def summarise(summary: dict[str, Any], device_name: str) -> None:
    print(f"   CUDA-only tests: {summary.get('tests') or 'no result (see above)'}")
    for key, label in (("train_resnet18_b256", "ResNet-18, batch 256"),
                       ("train_gpu_preset_b512", "gpu preset, batch 512")):
        if key not in summary and summary.get("dry_run"):
            continue
        r = summary.get(key) or {}
        if r.get("bound"):
            print(f"   {label:22s} bound {r['bound']:9.0f} views/s; default pipeline "
                  f"{r['default_pipeline'] / r['bound']:.3f} of it, no augmentation "
                  f"{r['no_augment'] / r['bound']:.3f}")
        else:
            print(f"   {label:22s} no result (see above)")
    e = summary.get("embed") or {}
    if e.get("bound"):
        print(f"   embedding              bound {e['bound']:9.0f} images/s; engine "
              f"{e['engine'] / e['bound']:.3f}, embed_images "
              f"{e['embed_images'] / e['bound']:.3f} of it")
    else:
        print("   embedding              no result (see above)")
    ceiling = summary.get("input_ceiling")
    rate = (summary.get("train_gpu_preset_b512") or {}).get("default_pipeline")
    if ceiling and rate:
        print(f"   input ceiling / training rate (gpu preset): "
              f"{ceiling['loader_and_augment'] / (rate / 2):.1f}x (below 1: input-bound)")
    if rate:
        print(f"   reference study ({STUDY_GALAXIES:,} galaxies x {STUDY_EPOCHS} epochs, "
              f"ResNet-18, 32 px, gpu preset): {study_hours(rate):.1f} h at "
              f"{rate / 2:,.0f} galaxies/s on one {device_name}")
    else:
        print("   reference study: no training rate measured, no extrapolation")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="", help="keep each stage's JSON in this directory")
    p.add_argument("--quick", action="store_true", help="shorter stages (about 4 minutes)")
    p.add_argument("--dry-run", action="store_true",
                   help="every stage on the CPU at toy sizes (seconds): checks the script works")
    args = p.parse_args()
    dry = args.dry_run
    if not dry:
        reason = no_cuda_reason()
        if reason is not None:
            print(f"gpu_check: no CUDA device, nothing to check: {reason}.")
            return 0

    import torch

    start = time.perf_counter()
    if dry:
        device_name = "CPU"
        print(f"gpu_check --dry-run: every stage on the CPU at toy sizes; torch "
              f"{torch.__version__}, {torch.get_num_threads()} threads")
        sizes = Sizes.dry_run()
    else:
        props = torch.cuda.get_device_properties(0)
        device_name = props.name
        print(f"gpu_check: {torch.cuda.device_count()} × {props.name}, "
              f"{props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA "
              f"{torch.version.cuda}, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'NO'}")
        sizes = Sizes.gpu(args.quick)
    stages = Stages()
    summary: dict[str, Any] = {"device": device_name, "dry_run": dry}
    with tempfile.TemporaryDirectory() as tmpdir:
        out = Path(args.out) if args.out else Path(tmpdir)
        out.mkdir(parents=True, exist_ok=True)
        summary["tests"] = stages.run("1. CUDA-only tests (pytest -m cuda)", cuda_tests, sizes,
                                      dry)
        if summary["tests"]:
            print(f"   -> {summary['tests']}")
        summary.update(stages.run("2. training, bf16 + channels_last, vs the model-only bound",
                                  train_stage, out, sizes, dry) or {})
        summary["embed"] = stages.run("3. embedding vs the forward-only bound",
                                      embed_throughput, out, sizes, dry)
        summary["input_ceiling"] = stages.run(
            "4. input ceiling: memmap loader + pinned non-blocking copy + 2 views on device",
            input_ceiling, Path(tmpdir), sizes)
        summary.update(stages.run(
            "5. peak GPU memory of a training step (ResNet-18, gpu preset, two views)",
            peak_memory, sizes) or {})
        print("\n== summary")
        summarise(summary, device_name)
        print(f"   gpu_check took {time.perf_counter() - start:.0f} s")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if stages.failed:
        print(f"gpu_check: {len(stages.failed)} stage(s) FAILED: {'; '.join(stages.failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
