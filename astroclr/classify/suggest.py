"""Which galaxies to label next: ``astroclr suggest`` and ``TrainedModel.suggest``.

Random picking spends a labelling budget on the common case (72 % of the SDSS sample is early
type) and the rare classes arrive last. Two regimes, both in representation space (the run's
``embeddings.fits``, centred and on the unit sphere, the geometry ``astroclr similar`` uses):

* **cold** (no labels yet): the galaxy nearest each centre of a k-means into ``n`` clusters,
  weighted by local density (a Gaussian kernel over the ``DENSITY_K`` nearest neighbours).
  k-means alone gives far outliers clusters of their own once ``n`` is large; weighting by
  density keeps the budget on the populated regions, and one pick per cluster
  keeps the picks apart. The score is the share of the (density-weighted) sample its cluster
  holds.
* **warm** (a labels file of the galaxies labelled so far): the evaluators' linear probe
  (standardised, class-weighted logistic regression, :func:`astroclr.evaluate.models.linear_model`)
  trained on those labels; a galaxy's uncertainty is one minus the margin between its two most
  probable classes. ``diverse`` (the default) is Zhdanov's diverse mini-batch selection
  (arXiv:1901.05954): the ``PREFILTER * n`` most uncertain unlabelled galaxies, a k-means into
  ``n`` clusters weighted by uncertainty, the galaxy nearest each centre; a batch of 50 then
  does not spend itself on 50 near-copies at one class boundary. ``uncertainty`` is uncertainty
  sampling alone (Lewis & Gale 1994), the published baseline. Galaxies already labelled are
  never suggested.

k-means is fitted on at most ``FIT_MAX`` galaxies (a seeded sample), so a million-galaxy run
costs what 50,000 do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astropy.table import Table

    from astroclr.data.galaxies import Galaxies

STRATEGIES = ("diverse", "uncertainty")
#: galaxies k-means (and the density estimate) is fitted on, at most
FIT_MAX = 50_000
#: neighbours of the density estimate
DENSITY_K = 10
#: uncertain candidates per pick that the diverse selection clusters (Zhdanov's beta)
PREFILTER = 10
#: picks drawn in the montage (a montage of 500 panels helps no one)
MONTAGE_MAX = 50


def unit(reps: np.ndarray) -> np.ndarray:
    """Representations centred and scaled to unit length (cosine geometry, as ``similar``)."""
    x = np.asarray(reps, dtype=np.float64)
    x = x - x.mean(axis=0)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 1e-12, norm, 1.0)


def density(x: np.ndarray, k: int = DENSITY_K) -> np.ndarray:
    """Local density of each row of ``x``, scaled to mean 1: a Gaussian kernel over its ``k``
    nearest neighbours, of the width of a typical galaxy's ``k``-th neighbour distance. A
    galaxy far from all others (several widths) weighs next to nothing; inverse distances
    would still give it a third of a typical weight in 64 dimensions."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(x) - 1)
    if k < 1:
        return np.ones(len(x))
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    width = max(float(np.median(dist[:, -1])), 1e-9)
    w = np.exp(-(dist[:, 1:] / width) ** 2).mean(axis=1)
    w = np.maximum(w / w.mean(), 1e-6)  # k-means needs positive weights
    return w


def _sample(rows: np.ndarray, seed: int, limit: int = FIT_MAX) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng([seed, 2]).choice(rows, limit, replace=False))


def centre_picks(x: np.ndarray, n: int, weights: np.ndarray, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(picks, share)``: positions in ``x`` of the member nearest each centre of a weighted
    k-means into ``n`` clusters, and the weight share of its cluster. Clusters left empty are
    filled with the heaviest rows not yet picked (share 0)."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than n
        km = KMeans(n_clusters=n, init="k-means++", n_init=3, random_state=seed)
        assign = km.fit_predict(x, sample_weight=weights)
    picks, share = [], []
    dist = ((x - km.cluster_centers_[assign]) ** 2).sum(axis=1)
    for c in range(n):
        members = np.flatnonzero(assign == c)
        if len(members):
            picks.append(int(members[np.argmin(dist[members])]))
            share.append(float(weights[members].sum() / weights.sum()))
    taken = set(picks)
    for i in np.argsort(-weights, kind="stable"):
        if len(picks) >= n:
            break
        if int(i) not in taken:
            picks.append(int(i))
            share.append(0.0)
            taken.add(int(i))
    return np.asarray(picks, dtype=np.int64), np.asarray(share)


def cold_rows(reps: np.ndarray, n: int, seed: int = 0,
              exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, scores)``: ``n`` representative, mutually distant galaxies (density-weighted
    k-means centres), most representative first; ``exclude`` rows are never picked."""
    pool = np.setdiff1d(np.arange(len(reps)), np.asarray(exclude if exclude is not None else [],
                                                         dtype=np.int64))
    _check_n(n, len(pool))
    fit = _sample(pool, seed)
    x = unit(reps)[fit]
    picks, share = centre_picks(x, n, density(x), seed)
    order = np.argsort(-share, kind="stable")
    return fit[picks[order]], share[order]


def probe_proba(reps: np.ndarray, rows: np.ndarray, y: np.ndarray, pool: np.ndarray,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(proba, classes)``: the evaluators' linear probe trained on ``reps[rows]`` (labels
    ``y``), its class probabilities for ``reps[pool]``."""
    from astroclr.evaluate.classifiers import Task
    from astroclr.evaluate.models import linear_model

    labels = np.full(len(reps), -1, dtype=np.int64)
    labels[rows] = y
    classes = np.unique(y)
    task = Task(seed=seed, split=None, train_idx=np.asarray(rows), test_idx=np.asarray(pool),
                classes=classes, labels=labels)
    out = linear_model(np.asarray(reps, dtype=np.float32))(task)
    return np.asarray(out[0] if isinstance(out, tuple) else out), classes


def uncertainty(proba: np.ndarray) -> np.ndarray:
    """One minus the margin between the two most probable classes: 1 on a boundary, 0 sure."""
    top = np.sort(proba, axis=1)
    return 1.0 - (top[:, -1] - top[:, -2])


def warm_rows(reps: np.ndarray, rows: np.ndarray, y: np.ndarray, n: int, seed: int = 0,
              strategy: str = "diverse") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(picks, scores, guesses)``: ``n`` unlabelled galaxies to label next given labels ``y``
    of ``rows`` (see the module docstring), most uncertain first; ``guesses`` is the probe's
    most probable label of each."""
    if strategy not in STRATEGIES:
        raise AstroclrError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    pool = np.setdiff1d(np.arange(len(reps)), rows)
    _check_n(n, len(pool))
    proba, classes = probe_proba(reps, rows, y, pool, seed)
    u = uncertainty(proba)
    if strategy == "uncertainty":
        chosen = np.argsort(-u, kind="stable")[:n]
    else:
        m = min(len(pool), FIT_MAX, max(PREFILTER * n, n))
        cand = np.sort(np.argsort(-u, kind="stable")[:m])
        picks, _ = centre_picks(unit(reps)[pool[cand]], n, u[cand] + 1e-6, seed)
        chosen = cand[picks]
        chosen = chosen[np.argsort(-u[chosen], kind="stable")]
    return pool[chosen], u[chosen], classes[np.argmax(proba[chosen], axis=1)]


def _check_n(n: int, available: int) -> None:
    if n < 1:
        raise AstroclrError(f"--n {n}: suggest at least one galaxy")
    if n > available:
        raise AstroclrError(f"--n {n}: only {available} galaxies are left to suggest")


@dataclass
class Suggestion:
    """What ``suggest`` picked: the table (``id``, ``rank``, ``reason``, ``score``,
    ``probe_class``) and the files written."""

    table: "Table"
    csv: Path | None = None
    montage: Path | None = None


def suggest_rows(reps: np.ndarray, n: int, labelled: np.ndarray | None = None,
                 values: np.ndarray | None = None, seed: int = 0,
                 strategy: str = "diverse") -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """``(rows, scores, reasons, guesses)`` for representations ``reps``: cold without labels,
    warm with ``values`` (integer labels) of rows ``labelled``; warm needs two classes, so
    labels of one class get the cold picks among the unlabelled (reason says so)."""
    if labelled is None or len(labelled) == 0:
        rows, scores = cold_rows(reps, n, seed)
        return rows, scores, ["representative"] * len(rows), np.full(len(rows), -1)
    if len(np.unique(values)) < 2:
        rows, scores = cold_rows(reps, n, seed, exclude=labelled)
        return rows, scores, ["representative (labels hold one class)"] * len(rows), \
            np.full(len(rows), -1)
    rows, scores, guesses = warm_rows(reps, labelled, values, n, seed, strategy)
    reason = "uncertain + diverse" if strategy == "diverse" else "uncertain"
    return rows, scores, [reason] * len(rows), guesses


def suggest_run(run_dir: str | Path, n: int, labels_file: str | Path | None = None,
                out: str | Path | None = None, montage: str | Path | None = None,
                seed: int = 0, strategy: str = "diverse",
                label_column: str | None = None) -> Suggestion:
    """Suggest ``n`` galaxies of a run to label next (cold, or warm from a labels file); with
    ``out``, write the table as CSV and a montage of the picks (``montage``, default ``out``
    with ``.png``)."""
    from astropy.table import Table

    import astroclr.config as cfgmod
    from astroclr.classify.labels import known_classes, read_labels
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.rundir import open_run

    if strategy not in STRATEGIES:
        raise AstroclrError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    out = Path(out) if out is not None else None
    if out is not None and out.suffix.lower() != ".csv":
        raise AstroclrError(f"--out {out}: suggest writes a CSV table (.csv)")
    existing = open_run(run_dir)
    ids, reps = existing.rundir.embedding_arrays()
    galaxies: Galaxies | None = None
    labelled = values = None
    names: dict[int, str] = {}
    if labels_file is not None or out is not None:
        galaxies = existing.galaxies()  # the label column's classes, and the montage's images
    if labels_file is not None:
        assert galaxies is not None
        column = label_column or cfgmod.resolve(existing.config, get_registry()).run.label_column
        labelled, values, names = read_labels(labels_file, ids, column,
                                              known_classes(galaxies, column),
                                              f"run {existing.dir}")
    rows, scores, reasons, guesses = suggest_rows(reps, n, labelled, values, seed, strategy)
    table = Table()
    table["id"] = ids[rows]
    table["rank"] = np.arange(1, len(rows) + 1)
    table["reason"] = reasons
    table["score"] = np.round(scores, 6)
    table["probe_class"] = [names.get(int(g), str(int(g))) if g >= 0 else "" for g in guesses]
    found = Suggestion(table)
    if out is not None:
        assert galaxies is not None
        found.csv = _write_csv(table, out)
        found.montage = _montage(galaxies, table, Path(montage) if montage else
                                 out.with_suffix(".png"))
    return found


def _write_csv(table: "Table", path: Path) -> Path:
    import io

    from astroclr.files import atomic_write

    buf = io.StringIO()
    table.write(buf, format="ascii.csv")
    return atomic_write(path, buf.getvalue())


def _montage(galaxies: "Galaxies", table: "Table", path: Path) -> Path:
    from astroclr.evaluate.ids import plain
    from astroclr.evaluate.montage import montage

    shown = table[:MONTAGE_MAX]
    picks = [(plain(gid), float(s)) for gid, s in zip(shown["id"], shown["score"])]
    more = f"; the first {len(shown)} of {len(table)}" if len(table) > len(shown) else ""
    title = f"Suggested to label next ({shown['reason'][0]}; score{more})"
    first = f"1. {{id}}\nscore = {picks[0][1]:.3f}"
    return montage(galaxies, picks[0][0], picks[1:], path, title=title, first=first,
                   value="score")
