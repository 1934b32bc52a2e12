"""The Python API end to end: train a model, then embed new images with it.

    python examples/embed_api.py                       # ~3 minutes on a laptop CPU
    python examples/embed_api.py --steps 3 --limit 200 --out /tmp/embed_demo   # a smoke test

1. ``astroclr.run(...)`` trains SimCLR on the embedded SDSS sample, embeds every galaxy,
   runs the evaluators and writes a run directory (the same as ``astroclr run``);
2. ``astroclr.load(run_dir)`` loads the trained encoder with the run's preprocessing;
3. ``model.embed(images)`` maps raw cutouts (N, C, H, W) – in the bands and raw size the
   dataset reads, before binning and normalisation – to (N, 64) representations;
4. the representations are used: nearest neighbours of a galaxy by cosine similarity.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import astroclr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/embed_api_demo", help="run directory")
    parser.add_argument("--time-budget", default="2m", help="training wall-clock budget")
    parser.add_argument("--steps", type=int, default=-1, help="stop after N steps (-1: budget)")
    parser.add_argument("--limit", type=int, default=0, help="use the first N galaxies (0: all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--backbone", default="smallcnn")
    args = parser.parse_args(argv)

    # 1. Train, embed, evaluate. Keyword shortcuts set [run] and [train] keys; ``sets`` reach
    #    any key (dataset, backbone, augment and evaluator parameters), as --set does.
    run = astroclr.run(
        dataset="sdss",
        backbone=args.backbone,
        out=args.out,
        overwrite=True,
        time_budget=args.time_budget,
        max_steps=args.steps,
        batch_size=args.batch_size,
        evaluators=["probe"],
        eval_seeds=[0],
        train_sizes=[50],
        progress=False,
        sets=[f"dataset.limit={args.limit}", "evaluate.probe.models=['linear']"],
    )
    print(f"trained in {run.state['train']['train_seconds']:.0f} s; run directory: {run.dir}")
    # metrics.json: every number of the report; here the linear probe on 50 labelled galaxies.
    probe = run.metrics["evaluators"]["probe"]["metrics"]
    for size, result in probe["models"]["linear"]["by_size"].items():
        print(f"linear probe, {size} labels: balanced accuracy "
              f"{result['mean']['balanced_accuracy']:.3f} on {probe['n_test']} test galaxies")

    # 2. Load the trained encoder (any process, any time later; device defaults to cuda if any).
    model = astroclr.load(run.dir, device="cpu")
    print(f"model: bands {model.bands}, {model.image_size} px after preprocessing "
          f"({model.preprocessing})")

    # 3. Embed raw cutouts. Here: the first 100 raw g, r, i cutouts of the embedded sample
    #    (64x64 px, binned 2x2 to 32x32 by the model's own preprocessing).
    from astroclr_sdss.sample import load_raw_sample

    raw, catalog = load_raw_sample(tuple(model.bands))
    images, ids = raw[:100], np.asarray(catalog["id"][:100])
    vectors = model.embed(images)                     # (100, 64) float32
    print(f"embedded {images.shape} -> {vectors.shape}")

    # The same images give the same vectors the run stored in embeddings.fits.
    stored = run.embeddings()
    rows = {gid: i for i, gid in enumerate(np.asarray(stored["id"]))}
    same = np.asarray(stored["representation"])[[rows[g] for g in ids]]
    print(f"max difference to the run's embeddings.fits: {np.abs(same - vectors).max():.2e}")

    # 4. Use them: the 5 nearest neighbours of the first galaxy, by cosine similarity of the
    #    representations centred on the dataset's mean (the raw vectors share a large common
    #    component, which would make every pair look alike).
    centred = vectors - np.asarray(stored["representation"]).mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    similarity = unit @ unit[0]
    nearest = np.argsort(-similarity)[1:6]
    print(f"galaxies most similar to {ids[0]}:",
          ", ".join(f"{ids[i]} ({similarity[i]:.3f})" for i in nearest))
    np.save(Path(run.dir) / "embed_api_vectors.npy", vectors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
