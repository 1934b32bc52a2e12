"""Do the anomaly scores find known oddities? Recall of injected images in the top 1% and 5%.

A copy of the SDSS sample a run was trained on gets four kinds of oddity, each in ``--fraction``
(default 1%) of the images, chosen at random and disjoint:

- ``trail``: a satellite trail, a bright line (Gaussian profile, sigma 0.7 px) across the cutout;
- ``star``: a saturated star, a Gaussian (sigma 2 px) 10-25 px from the centre, clipped at 255;
- ``masked``: half the cutout (left, right, top or bottom) set to zero, as a chip gap;
- ``pair``: another galaxy of the sample added 14-20 px from the centre.

(The cutouts are 8-bit composites, so every image is clipped to 0-255.) The whole copy is
embedded with the run's model and preprocessing (``astroclr.load``); each score of the
``anomaly`` evaluator (``knn``: distance to the k-th neighbour; ``iforest``) ranks every galaxy,
on the representations and on PCA of the preprocessed pixels (as many components as the
representation, fitted on all images: anomaly ranking is unsupervised). With 4% of images
injected, the top 1% can hold at most a quarter of them: that ceiling is printed.

Run: ``python benchmarks/anomaly_recall.py RUN_DIR [--fraction 0.01] [--k 10] [--seed 0]``
(the run must be of the embedded SDSS sample, e.g.
``astroclr run --dataset sdss --backbone resnet18 --time-budget 2m --out /tmp/r16``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

KINDS = ("trail", "star", "masked", "pair")


def _shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``img`` (C, H, W) moved by (dy, dx) pixels, zero-filled (no wrap-around)."""
    out = np.zeros_like(img)
    h, w = img.shape[1:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, yd, xd] = img[:, ys, xs]
    return out


def inject(raw: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A copy of ``raw`` (N, C, H, W, 0-255) with oddities, and the rows of each kind."""
    rng = np.random.default_rng(seed)
    n, _, h, w = raw.shape
    per = max(1, int(round(fraction * n)))
    rows = rng.permutation(n)
    chosen = {kind: np.sort(rows[i * per:(i + 1) * per]) for i, kind in enumerate(KINDS)}
    clean = rows[len(KINDS) * per:]
    out = raw.copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for r in chosen["trail"]:
        theta, (y0, x0) = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8, 2) * (h, w)
        d = np.abs((yy - y0) * np.cos(theta) - (xx - x0) * np.sin(theta))
        out[r] += rng.uniform(120, 220) * np.exp(-0.5 * (d / 0.7) ** 2)
    for r in chosen["star"]:
        rad, phi = rng.uniform(10, 25), rng.uniform(0, 2 * np.pi)
        y0, x0 = h / 2 + rad * np.sin(phi), w / 2 + rad * np.cos(phi)
        out[r] += 3000.0 * np.exp(-0.5 * ((yy - y0) ** 2 + (xx - x0) ** 2) / 2.0 ** 2)
    for r in chosen["masked"]:  # one half: bottom, top, left or right
        half = [np.s_[:, : h // 2], np.s_[:, h // 2:], np.s_[:, :, : w // 2],
                np.s_[:, :, w // 2:]][rng.integers(4)]
        out[r][half] = 0.0
    for r in chosen["pair"]:
        other = raw[rng.choice(clean)]  # its sky removed, so only the galaxy is added
        other = np.clip(other - np.median(other, axis=(1, 2), keepdims=True), 0.0, None)
        rad, phi = rng.uniform(14, 20), rng.uniform(0, 2 * np.pi)
        out[r] += _shift(other, int(round(rad * np.sin(phi))), int(round(rad * np.cos(phi))))
    np.clip(out, 0.0, 255.0, out=out)
    return out, chosen


def recall(score: np.ndarray, rows: np.ndarray, top: float) -> float:
    """Fraction of ``rows`` among the ``top`` fraction of galaxies by ``score``."""
    n_top = int(round(top * len(score)))
    best = np.argsort(-score, kind="stable")[:n_top]
    return float(np.isin(rows, best).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--fraction", type=float, default=0.01)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default="", help="also draw 4 examples of each kind to this PNG")
    args = p.parse_args()

    import astroclr
    from astroclr.api import pca_features
    from astroclr.session.rundir import open_run
    from astroclr_evaluators.anomaly import anomaly_scores
    from astroclr_sdss.sample import load_raw_sample

    run = open_run(args.run_dir)
    ds = run.config.get("dataset", {})
    if run.config["run"]["dataset"] != "sdss" or ds.get("input", "sample") != "sample":
        raise SystemExit("this benchmark injects into the embedded SDSS sample: give a run of it")
    raw, _ = load_raw_sample(tuple(run.state["bands"]), ds.get("pool", ""))
    if ds.get("limit"):
        raw = raw[:ds["limit"]]
    odd, chosen = inject(raw, args.fraction, args.seed)
    if args.figure:
        _figure(odd, chosen, args.figure)
    model = astroclr.load(run.dir, device="cpu")
    t = time.perf_counter()
    reps = model.embed(odd)
    t_embed = time.perf_counter() - t
    pixels = model.preprocessing.apply(odd)
    pca, info = pca_features(pixels, np.arange(len(pixels)), reps.shape[1], args.seed)
    injected = np.concatenate(list(chosen.values()))
    ceiling = min(1.0, 0.01 * len(raw) / len(injected))
    print(f"run {run.dir}: {len(raw)} galaxies, {len(injected)} injected "
          f"({', '.join(f'{k} {len(v)}' for k, v in chosen.items())}); embedded in "
          f"{t_embed:.0f} s; PCA {info['components']} components "
          f"({info['explained_variance']:.0%} of the variance); top-1% ceiling for all injected "
          f"{ceiling:.2f}")
    print("\n| features | score | all: top 1% | all: top 5% | "
          + " | ".join(f"{k}: 1% / 5%" for k in KINDS) + " |")
    print("|---|---|---|---|" + "---|" * len(KINDS))
    for name, features in (("SimCLR representation", reps), ("PCA of the pixels", pca)):
        for score_name, score in anomaly_scores(features, args.k, args.seed).items():
            cells = [f"{recall(score, injected, 0.01):.2f}", f"{recall(score, injected, 0.05):.2f}"]
            cells += [f"{recall(score, rows, 0.01):.2f} / {recall(score, rows, 0.05):.2f}"
                      for rows in chosen.values()]
            print(f"| {name} | {score_name} | " + " | ".join(cells) + " |", flush=True)


def _figure(odd: np.ndarray, chosen: dict[str, np.ndarray], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astroclr.evaluate.similar import to_rgb

    fig, axes = plt.subplots(len(chosen), 4, figsize=(8, 2.1 * len(chosen)), squeeze=False)
    for i, (kind, rows) in enumerate(chosen.items()):
        for j, r in enumerate(rows[:4]):
            axes[i, j].imshow(to_rgb(odd[r]), origin="lower")
            axes[i, j].set_title(kind, fontsize=8)
            axes[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
