"""How strange a galaxy is, against a run's own galaxies: the anomaly scorer fitted with a run.

Three views of a galaxy, each a score where higher = stranger:

- ``representation``: the cosine distance (mean-centred, as ``astroclr similar``) to its
  ``k``-th nearest reference galaxy in the learnt representation;
- ``pixels``: the straight-line (L2) distance to its ``k``-th nearest reference galaxy in a PCA of the
  preprocessed pixels (the classic baseline, strong on artefacts and stars);
- ``asymmetry``: the rotational asymmetry of the sky-subtracted light, |I − I₁₈₀| / |I|
  (Conselice 2003), the physical indicator of mergers and disturbed galaxies.

The ``score`` is the mean, over the chosen components, of each component's robust z-score among
the reference galaxies (log of the value, less the reference median, over 1.4826 × its median
absolute deviation; the reference galaxies' own scores leave themselves out): views of
different units on one scale, and unbounded, so that a galaxy stranger than every reference
galaxy scores higher still (an empirical-CDF rank saturates at 1 there; on the sample's
real oddities the two fuse equally well, AUROC 0.919 against 0.915). Which components the
default fuses was chosen by measurement on the real oddities of the embedded sample
(docs/quality.md). The fitted scorer
(reference vectors, PCA basis, sorted reference scores) is saved with the run, so ``embed``
and ``predict`` score a new catalogue against the run's galaxies, and a galaxy scores the same
in the run as in a new table.

The scorer also carries what ``embed`` and ``predict`` need to tell a catalogue unlike the run's
galaxies (:mod:`astroclr.classify.shift`): a second PCA, fitted on a random half of the reference,
whose reconstruction residual of the other half calibrates the ``residual`` view (held-out
galaxies, so a galaxy the basis never saw is not flagged for that alone), and the 99th
percentile, over that half, of each view among
:data:`~astroclr.evaluate.anomaly_defaults.SHIFT_COMPONENTS`: a galaxy is beyond the run's
galaxies where it lies further beyond one view's percentile than 99% of them do in any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from astroclr.evaluate.anomaly_defaults import (
    ANOMALY_COMPONENTS,
    DEFAULT_ANOMALY_COMPONENTS,
    SHIFT_COMPONENTS,
    TWO_SIDED,
)
from astroclr.plugin.specs import AstroclrError

#: at most this many of the run's galaxies are the reference (seeded): the fit stays bounded
REFERENCE_MAX = 50_000
#: PCA components of the pixel view (20 found the sample's oddities as well as 50)
PIXEL_COMPONENTS = 20
#: floor of a score before its log (a zero distance or asymmetry)
FLOOR = 1e-9
#: a neighbour closer than this is the galaxy itself (a reference galaxy scored again, its
#: vectors recomputed in batches of another size: float32 rounding, not another galaxy)
SAME = {"representation": 1e-5, "pixels": 1e-3}
#: every view with a robust scale in a stored scorer (the score's and the shift check's)
VIEWS = ANOMALY_COMPONENTS + tuple(c for c in SHIFT_COMPONENTS if c not in ANOMALY_COMPONENTS)
#: a galaxy is beyond the run's galaxies when its largest excess over a view's percentile
#: exceeds this percentile of theirs (so 1% of a same-survey catalogue is, by construction)
OOD_PERCENTILE = 99.0
#: the residual's PCA keeps at most one component per this many galaxies it is fitted on: the
#: half it saw must not be much better reconstructed than the half that calibrates it (or a
#: run's own galaxies would look shifted against themselves)
GALAXIES_PER_RESIDUAL_COMPONENT = 20
#: the shift check's thresholds, stored with each scorer (a package keeps its verdicts):
#: ``ood_warn``, the fraction beyond the percentile above which ``embed``/``predict`` warn (5x
#: the 1% expected; a same-survey catalogue of the sample gave 0.6-1.0%); ``shift_warn``, the
#: largest median robust z of a view, in units of the reference's spread, above which they warn
#: (a 3x3 blur moved the residual's by -0.86, a same-survey catalogue by 0.07: docs/quality.md)
SHIFT_THRESHOLDS = {"ood_warn": 0.05, "shift_warn": 0.5}
#: what :meth:`AnomalyScorer.load` says of a scorer saved before the shift check
REFIT = "re-run `astroclr evaluate {run} -e anomaly` to refit it"


def asymmetry(images: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Rotational asymmetry of each image (N, C, H, W) about its centre, after removing the
    sky (the median of the outer ring, beyond 0.4 of the side from the centre)."""
    n = images.shape[0]
    out = np.empty(n, dtype=np.float32)
    h, w = images.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    ring = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) > 0.4 * min(h, w)
    for a in range(0, n, batch):
        img = np.asarray(images[a:a + batch], dtype=np.float32).mean(axis=1)
        sky = np.median(img[:, ring], axis=1)[:, None, None]
        light = np.clip(img - sky, 0.0, None)
        diff = np.abs(light - light[:, ::-1, ::-1]).sum(axis=(1, 2))
        out[a:a + batch] = diff / np.maximum(light.sum(axis=(1, 2)), 1e-6)
    return out


def sky_noise(images: np.ndarray, batch: int = 4096) -> np.ndarray:
    """The sky's pixel-to-pixel scatter of each image (N, C, H, W): 1.4826 x the median
    absolute deviation of the differences of neighbouring pixels in the outer ring (as
    :func:`asymmetry`'s), over sqrt(2), averaged over bands. Differences leave out the sky level
    and its gradients; noise adds to them, a wider PSF correlates neighbours and shrinks them."""
    n = images.shape[0]
    out = np.empty(n, dtype=np.float32)
    h, w = images.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    ring = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) > 0.4 * min(h, w)
    pairs = ring[:, 1:] & ring[:, :-1]
    for a in range(0, n, batch):
        img = np.asarray(images[a:a + batch], dtype=np.float32)
        d = (img[..., 1:] - img[..., :-1])[..., pairs]  # (n, C, pairs)
        mad = np.median(np.abs(d - np.median(d, axis=2, keepdims=True)), axis=2)
        out[a:a + batch] = (1.4826 / np.sqrt(2.0)) * mad.mean(axis=1)
    return out


def _kth(distances: np.ndarray, k: int, same: float) -> np.ndarray:
    """The ``k``-th smallest distance per row, the row's own zero-distance copy left out."""
    d = np.where(distances <= same, np.inf, distances)
    d = np.sort(d, axis=1)
    kth = d[:, min(k, d.shape[1]) - 1]
    # only copies of itself among the candidates: as close as a galaxy can be
    return np.where(np.isfinite(kth), kth, 0.0).astype(np.float32)


def _l2_neighbours(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatL2(reference.shape[1])
    index.add(np.ascontiguousarray(reference, dtype=np.float32))
    _, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32),
                           min(k + 1, len(reference)))
    # exact distances of the candidates: faiss's |q|² + |r|² − 2 q·r loses the zero of a
    # galaxy's distance to itself to cancellation
    diff = reference[rows].astype(np.float64) - queries[:, None, :].astype(np.float64)
    return _kth(np.sqrt((diff * diff).sum(axis=2)), k, SAME["pixels"])


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, np.float32)


@dataclass
class AnomalyScorer:
    """A fitted scorer: the reference galaxies' vectors and the sorted reference scores."""

    components: tuple[str, ...]
    k: int
    rep_reference: np.ndarray          # (R, D) representations
    pca_mean: np.ndarray               # (P,) pixel mean
    pca_basis: np.ndarray              # (K, P) principal axes
    pix_reference: np.ndarray          # (R, K) PCA coordinates
    centre: dict[str, float]           # component -> median of the reference's log scores
    scale: dict[str, float]            # component -> 1.4826 x their median absolute deviation
    fused_reference: np.ndarray        # (R,) sorted fused scores of the reference
    res_mean: np.ndarray | None = None   # (P,) the residual's PCA (half the reference), or None
    res_basis: np.ndarray | None = None  # (K', P)   for a scorer saved before the shift check
    tail_cuts: dict[str, float] | None = None  # shift view -> OOD_PERCENTILE of its z
    ood_cut: float | None = None         # OOD_PERCENTILE of the largest excess over tail_cuts
    thresholds: dict[str, float] | None = None  # SHIFT_THRESHOLDS when it was fitted

    @classmethod
    def fit(cls, representations: np.ndarray, images: np.ndarray,
            components: Sequence[str] = DEFAULT_ANOMALY_COMPONENTS, k: int = 10, seed: int = 0,
            reference_max: int = REFERENCE_MAX) -> "AnomalyScorer":
        """Fit on a run's galaxies (representations (N, D), preprocessed images (N, C, H, W))."""
        from sklearn.decomposition import PCA

        comps = tuple(components)
        unknown = [c for c in comps if c not in ANOMALY_COMPONENTS]
        if unknown or not comps:
            raise AstroclrError(f"anomaly components {list(comps)!r}: choose from "
                                f"{', '.join(ANOMALY_COMPONENTS)}")
        if k < 1:
            raise AstroclrError(f"anomaly k must be at least 1, got {k}")
        n = len(representations)
        if n < 3:
            raise AstroclrError("the anomaly scorer needs at least three galaxies")
        rows = np.arange(n) if n <= reference_max else np.sort(
            np.random.default_rng(seed).choice(n, reference_max, replace=False))
        reps = np.asarray(representations[rows], dtype=np.float32)
        flat = np.asarray(images[rows], dtype=np.float32).reshape(len(rows), -1)
        pca = PCA(n_components=min(PIXEL_COMPONENTS, len(rows) - 1, flat.shape[1]),
                  random_state=seed).fit(flat)
        scorer = cls(comps, int(k), reps, pca.mean_.astype(np.float32),
                     pca.components_.astype(np.float32),
                     ((flat - pca.mean_) @ pca.components_.T).astype(np.float32), {}, {},
                     np.empty(0, np.float32))
        raw = scorer.raw_scores(reps, np.asarray(images[rows]))
        for c in ANOMALY_COMPONENTS:  # every component's scale: any fusion of a stored scorer
            logs = np.log(np.maximum(raw[c].astype(np.float64), FLOOR))
            med = float(np.median(logs))
            scorer.centre[c] = med
            scorer.scale[c] = max(float(np.median(np.abs(logs - med))) * 1.4826, FLOOR)
        scorer.fused_reference = np.sort(scorer.fuse(raw))
        scorer._fit_shift(flat.reshape((len(rows), *images.shape[1:])), raw, seed)
        return scorer

    def _fit_shift(self, images: np.ndarray, raw: dict[str, np.ndarray], seed: int) -> None:
        """The residual's PCA on a random half of the reference, the shift views' scales and
        tail cuts on the other half (``raw``: the reference's component scores)."""
        from sklearn.decomposition import PCA

        n = len(images)
        flat = images.reshape(n, -1).astype(np.float32, copy=False)
        order = np.random.default_rng([seed, 1]).permutation(n)
        fit, held = np.sort(order[:(n + 1) // 2]), np.sort(order[(n + 1) // 2:])
        keep = min(PIXEL_COMPONENTS, len(fit) // GALAXIES_PER_RESIDUAL_COMPONENT, flat.shape[1])
        pca = PCA(n_components=max(1, keep), random_state=seed).fit(flat[fit])
        self.res_mean = pca.mean_.astype(np.float32)
        self.res_basis = pca.components_.astype(np.float32)
        views = {"residual": self.residual(flat[held]), "noise": sky_noise(images[held])}
        for c, values in views.items():
            logs = np.log(np.maximum(values.astype(np.float64), FLOOR))
            self.centre[c] = med = float(np.median(logs))
            self.scale[c] = max(float(np.median(np.abs(logs - med))) * 1.4826, FLOOR)
        z = self.shift_z({**{c: raw[c][held] for c in SHIFT_COMPONENTS if c in raw}, **views})
        self.tail_cuts = {c: float(np.percentile(np.abs(v) if c in TWO_SIDED else v,
                                                 OOD_PERCENTILE)) for c, v in z.items()}
        self.ood_cut = float(np.percentile(self.beyond(z), OOD_PERCENTILE))
        self.thresholds = dict(SHIFT_THRESHOLDS)

    @property
    def checks_shift(self) -> bool:
        """Whether the scorer carries the domain-shift check (one saved before it does not)."""
        return self.res_basis is not None and self.tail_cuts is not None

    def residual(self, images: np.ndarray, batch: int = 4096) -> np.ndarray:
        """The L2 norm of what the residual's PCA leaves of each image (N, ...)."""
        if self.res_mean is None or self.res_basis is None:
            raise AstroclrError(f"this anomaly scorer predates the shift check; "
                                f"{REFIT.format(run='RUN')}")
        out = np.empty(len(images), dtype=np.float32)
        for a in range(0, len(images), batch):
            x = np.asarray(images[a:a + batch], dtype=np.float32).reshape(
                len(images[a:a + batch]), -1) - self.res_mean
            left = x - (x @ self.res_basis.T) @ self.res_basis
            out[a:a + batch] = np.sqrt((left.astype(np.float64) ** 2).sum(axis=1))
        return out

    def z(self, component: str, values: np.ndarray) -> np.ndarray:
        """A component's robust z-score among the reference galaxies."""
        return ((np.log(np.maximum(values.astype(np.float64), FLOOR)) - self.centre[component])
                / self.scale[component])

    def shift_z(self, raw: dict[str, np.ndarray], images: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
        """Each of :data:`SHIFT_COMPONENTS`' robust z of galaxies; those not in ``raw`` are
        computed from ``images``."""
        need = [c for c in SHIFT_COMPONENTS if c not in raw]
        if need:
            if images is None:
                raise AstroclrError(f"the shift check needs images for {', '.join(need)}")
            raw = {**raw, **self.raw_scores(None, images, need)}
        return {c: self.z(c, raw[c]) for c in SHIFT_COMPONENTS}

    def beyond(self, z: dict[str, np.ndarray]) -> np.ndarray:
        """Each galaxy's largest excess of a view's z (``shift_z``) over that view's
        percentile among the run's galaxies (NaN where a view is NaN): above ``ood_cut``, the
        galaxy is beyond them."""
        assert self.tail_cuts is not None
        return np.max(np.stack([(np.abs(z[c]) if c in TWO_SIDED else z[c]) - self.tail_cuts[c]
                                for c in SHIFT_COMPONENTS]), axis=0)

    @property
    def needs_representations(self) -> bool:
        """Whether the score uses the representation (else images alone score a galaxy)."""
        return "representation" in self.components

    def raw_scores(self, representations: np.ndarray | None, images: np.ndarray,
                   components: Sequence[str] = ANOMALY_COMPONENTS,
                   batch: int = 4096) -> dict[str, np.ndarray]:
        """The ``components``' scores of galaxies against the reference (higher = stranger);
        ``representations`` may be None when the representation is not among them."""
        from astroclr.evaluate.index import NeighbourIndex

        want = set(components)
        if "representation" in want and representations is None:
            raise AstroclrError("the representation's anomaly score needs representations")
        index = NeighbourIndex.build(self.rep_reference) if "representation" in want else None
        out: dict[str, list[np.ndarray]] = {c: [] for c in VIEWS if c in want}
        for a in range(0, len(images), batch):
            b = min(a + batch, len(images))
            x = np.asarray(images[a:b], dtype=np.float32).reshape(b - a, -1)
            bad = ~np.isfinite(x).all(axis=1)  # NaN or inf pixels: NaN scores, never a guess
            if index is not None:
                reps = np.asarray(representations[a:b], dtype=np.float32)
                bad_rep = bad | ~np.isfinite(reps).all(axis=1)
                _, d = index.search(np.where(bad_rep[:, None], 0.0, reps),
                                    min(self.k + 1, len(index)))
                out["representation"].append(np.where(bad_rep, np.nan, _kth(
                    d, self.k, SAME["representation"])).astype(np.float32))
            if "pixels" in want:
                coords = (np.where(bad[:, None], 0.0, x) - self.pca_mean) @ self.pca_basis.T
                out["pixels"].append(np.where(bad, np.nan, _l2_neighbours(
                    self.pix_reference, coords.astype(np.float32), self.k)).astype(np.float32))
            if "asymmetry" in want:
                out["asymmetry"].append(np.where(bad, np.nan, asymmetry(images[a:b])))
            if "noise" in want:
                out["noise"].append(np.where(bad, np.nan, sky_noise(images[a:b])))
            if "residual" in want:
                out["residual"].append(np.where(bad, np.nan, self.residual(
                    np.where(bad[:, None], 0.0, x))))
        return {c: _joined(parts).astype(np.float32) for c, parts in out.items()}

    def fuse(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """The fused score of component scores (``raw_scores``): their mean robust z-score."""
        return np.mean([self.z(c, raw[c]) for c in self.components], axis=0).astype(np.float32)

    def score(self, representations: np.ndarray | None,
              images: np.ndarray) -> dict[str, np.ndarray]:
        """``{"score": fused (N,), component: raw (N,) ...}`` of new galaxies, for the
        scorer's own components."""
        raw = self.raw_scores(representations, images, self.components)
        return {"score": self.fuse(raw), **raw}

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0–100) of the reference galaxies' own fused score."""
        return float(np.percentile(self.fused_reference, q))

    # -- storage ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from astroclr.files import atomic_path

        path = Path(path)
        views = [c for c in VIEWS if c in self.centre]
        shift = {} if not self.checks_shift else {
            "res_mean": self.res_mean, "res_basis": self.res_basis,
            "ood_cut": np.float64(self.ood_cut),
            "tail_cuts": np.asarray([self.tail_cuts[c] for c in SHIFT_COMPONENTS]),
            **{k: np.float64(v) for k, v in (self.thresholds or SHIFT_THRESHOLDS).items()}}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, components=np.asarray(self.components), k=np.int64(self.k),
                     rep_reference=self.rep_reference, pca_mean=self.pca_mean,
                     pca_basis=self.pca_basis, pix_reference=self.pix_reference,
                     fused_reference=self.fused_reference,
                     centre=np.asarray([self.centre[c] for c in views]),
                     scale=np.asarray([self.scale[c] for c in views]), **shift)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AnomalyScorer":
        """A stored scorer; one saved before the shift check loads without it
        (:attr:`checks_shift` False): its scores are the same."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                data: dict[str, Any] = {key: z[key] for key in z.files}
            shift = "res_basis" in data
            views = VIEWS if shift else ANOMALY_COMPONENTS
            if len(data["centre"]) != len(views) or len(data["scale"]) != len(views):
                raise ValueError(f"{len(data['centre'])} component scales, not {len(views)}")
            scorer = cls(tuple(str(c) for c in data["components"]), int(data["k"]),
                         data["rep_reference"], data["pca_mean"], data["pca_basis"],
                         data["pix_reference"],
                         dict(zip(views, map(float, data["centre"]))),
                         dict(zip(views, map(float, data["scale"]))),
                         data["fused_reference"])
            if shift:
                scorer.res_mean, scorer.res_basis = data["res_mean"], data["res_basis"]
                scorer.ood_cut = float(data["ood_cut"])
                scorer.tail_cuts = dict(zip(SHIFT_COMPONENTS, map(float, data["tail_cuts"])))
                if len(data["tail_cuts"]) != len(SHIFT_COMPONENTS):
                    raise ValueError(f"{len(data['tail_cuts'])} tail cuts")
                scorer.thresholds = {k: float(data[k]) for k in SHIFT_THRESHOLDS}
                if (scorer.res_mean.shape != scorer.pca_mean.shape
                        or scorer.res_basis.shape[1:] != scorer.res_mean.shape):
                    raise ValueError(f"a residual basis of shape {scorer.res_basis.shape} for "
                                     f"images of {scorer.pca_mean.size} values")
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise AstroclrError(f"{path}: not a readable anomaly scorer "
                                f"({' '.join(str(exc).split())[:120]})") from None
        arrays = [scorer.rep_reference, scorer.pix_reference, scorer.fused_reference,
                  np.asarray(list(scorer.centre.values())), np.asarray(list(scorer.scale.values()))]
        if shift:
            arrays += [scorer.res_mean, scorer.res_basis,
                       np.asarray([scorer.ood_cut, *scorer.thresholds.values(),
                                   *scorer.tail_cuts.values()])]
        if not all(np.isfinite(a).all() for a in arrays):
            raise AstroclrError(f"{path}: the anomaly scorer holds non-finite values")
        return scorer
