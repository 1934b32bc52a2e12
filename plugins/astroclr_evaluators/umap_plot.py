"""``umap``: a 2-D UMAP map of the representations, coloured by label and catalogue columns.

The reference work's picture: if SimCLR learned morphology, early- and late-type galaxies
occupy different regions of the map. Extra panels colour the same map by any catalogue
column (redshift, colour, size, ...) to show what else the representation encodes.

UMAP is compiled by numba on first use (about a minute); the compiled code is cached on disk
in ``$ASTROCLR_NUMBA_CACHE`` (else ``$NUMBA_CACHE_DIR``, else
``$XDG_CACHE_HOME/astroclr/numba``, by default ``~/.cache/astroclr/numba``) so that it is paid
once per machine and umap-learn version, not once per run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.api import AstroclrError, checked_features

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def numba_cache_dir() -> Path:
    """Where numba's compiled UMAP code is kept.

    ``$ASTROCLR_NUMBA_CACHE``, else ``$NUMBA_CACHE_DIR`` (numba's own setting), else the user
    cache directory: ``$XDG_CACHE_HOME/astroclr/numba`` (``~/.cache/astroclr/numba``).
    """
    for var in ("ASTROCLR_NUMBA_CACHE", "NUMBA_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "astroclr" / "numba"


def import_umap() -> Any:
    """Import umap-learn with numba's on-disk cache set up first, for all of its functions.

    numba reads ``NUMBA_CACHE_DIR`` when it is first imported; if something imported it
    already, its config is updated directly so the cache still lands in the same place.
    """
    path = numba_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home: numba falls back to its default (next to the sources)
        cache = False
    else:
        cache = True
        os.environ["NUMBA_CACHE_DIR"] = str(path)
        if "numba" in sys.modules:
            import numba

            numba.config.CACHE_DIR = str(path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's import-time TensorFlow/numba chatter
        import umap
    if cache:
        cache_compiled_code(("umap", "pynndescent"))
    return umap


def cache_compiled_code(packages: Sequence[str]) -> int:
    """Turn numba's disk cache on for every jitted function of ``packages`` not yet compiled.

    umap-learn marks only its layout optimiser ``cache=True``; the rest (fuzzy simplicial set,
    spectral initialisation, ...) was compiled afresh in every process: measured ~60 s of a
    70 s fit of 2,000 points, against ~8 s once compiled. Returns the number of functions
    switched on. A function numba cannot cache (dynamic globals) just stays uncached.
    """
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    count = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for value in list(vars(module).values()):
            if (isinstance(value, Dispatcher) and isinstance(value._cache, NullCache)
                    and not value.overloads):
                value.enable_caching()
                count += 1
    return count


def cosine_knn(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Exact cosine k-nearest neighbours (each point first, as umap expects), for UMAP.

    Why not let umap find them: its approximate search (pynndescent, used from 4,096 points)
    is JIT-compiled afresh in every process — measured ~70 s of a 100 s fit of 10,000
    galaxies, even with numba's disk cache — while scikit-learn's brute force on unit
    vectors takes ~2 s. Cosine distance = |u - v|^2 / 2 for unit vectors u, v.
    """
    from sklearn.neighbors import NearestNeighbors

    unit = features / np.clip(np.linalg.norm(features, axis=1, keepdims=True), 1e-12, None)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(unit).kneighbors(unit)
    return idx, (dist ** 2 / 2.0).astype(np.float32), None


def embed_2d(features: np.ndarray, n_neighbors: int, min_dist: float, seed: int,
             n_epochs: int | None = 200) -> np.ndarray:
    """UMAP coordinates (n, 2), cosine metric (as SimCLR compares representations).

    ``n_epochs`` 200: umap-learn's own default is 500 below 10,000 points and 200 above; the
    layout is the slow part, and 200 already gives a converged map for a figure.
    """
    umap = import_umap()
    import warnings

    n_neighbors = max(2, min(int(n_neighbors), len(features) - 1))
    knn = cosine_knn(features, n_neighbors)
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric="cosine", random_state=seed, n_jobs=1,
                        n_epochs=n_epochs, precomputed_knn=knn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state" etc.
        return np.asarray(reducer.fit_transform(features), dtype=np.float32)


def _column(context: "EvalContext", name: str) -> np.ndarray:
    if name not in context.galaxies.catalog.colnames:
        cols = ", ".join(context.galaxies.catalog.colnames)
        raise AstroclrError(f"evaluator 'umap': no catalogue column {name!r} to colour by; "
                            f"columns: {cols}")
    values = np.ma.asarray(context.galaxies.catalog[name])
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.number)
                                or values.dtype == bool):
        raise AstroclrError(f"evaluator 'umap': column {name!r} is not a numeric scalar column "
                            f"(dtype {values.dtype}, shape {values.shape})")
    return np.ma.filled(values.astype(np.float64), np.nan)  # masked -> NaN -> drawn grey


def evaluate(context: "EvalContext", color_by: Sequence[str] = (), n_neighbors: int = 15,
             min_dist: float = 0.1, max_points: int = 20000, seed: int = 0,
             n_epochs: int = 200, interactive: bool = True) -> "EvalResult":
    from astroclr.api import EvalResult

    features = checked_features(context.representations, context, "umap")
    if len(features) < 4:
        raise AstroclrError(f"evaluator 'umap': needs at least 4 galaxies, got {len(features)}")
    # labels are optional here: a map of unlabelled galaxies is still a map
    try:
        labels = context.labels()
        label_note = ""
    except AstroclrError as exc:
        labels = np.full(len(features), -1)
        label_note = f" (no labels: {exc})"
    extra = {name: _column(context, name) for name in color_by}  # fail before the slow part

    rng = np.random.default_rng(seed)
    idx = np.arange(len(features))
    if len(idx) > max_points:
        idx = np.sort(rng.choice(idx, max_points, replace=False))
    coords = embed_2d(features[idx], n_neighbors, min_dist, seed, n_epochs)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + len(extra)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.8), squeeze=False)
    ax = axes[0, 0]
    lab = labels[idx]
    size = max(1.0, min(12.0, 4000.0 / len(idx)))
    unl = lab < 0
    if unl.any():
        ax.scatter(coords[unl, 0], coords[unl, 1], s=size, c="lightgrey", label="unlabelled",
                   rasterized=True)
    names = context.label_names
    cmap = plt.get_cmap("tab10")
    for i, c in enumerate(np.unique(lab[~unl])):
        sel = lab == c
        name = names[c] if names is not None and 0 <= c < len(names) else str(c)
        ax.scatter(coords[sel, 0], coords[sel, 1], s=size, color=cmap(i % 10), alpha=0.7,
                   label=f"{name} ({int(sel.sum())})", rasterized=True)
    ax.set_title(f"UMAP of the representations: {context.label_column}")
    if unl.any() or (~unl).any():
        ax.legend(fontsize=8, markerscale=max(1.0, 12.0 / size), loc="best")
    for ax, (name, values) in zip(axes[0, 1:], extra.items()):
        v = values[idx]
        finite = np.isfinite(v)
        ax.scatter(coords[~finite, 0], coords[~finite, 1], s=size, c="lightgrey", rasterized=True)
        lo, hi = (np.percentile(v[finite], [2, 98]) if finite.any() else (0.0, 1.0))
        sc = ax.scatter(coords[finite, 0], coords[finite, 1], s=size, c=v[finite], cmap="viridis",
                        vmin=lo, vmax=hi, rasterized=True)
        fig.colorbar(sc, ax=ax, shrink=0.85)
        ax.set_title(f"coloured by {name}")
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    context.figures_dir.mkdir(parents=True, exist_ok=True)
    path = context.figures_dir / "umap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    np.save(context.figures_dir / "umap_coords.npy", np.column_stack([idx, coords]))
    figures = [path]
    if interactive:  # the same map, hover for cutouts and click for neighbours (umap_map.py)
        from astroclr_evaluators.umap_map import write_map

        figures.append(write_map(context, idx, coords, lab, context.figures_dir / "umap_map.html",
                                 title=f"UMAP of the representations: {context.label_column}"))

    md = (f"UMAP (cosine, n_neighbors = {n_neighbors}, min_dist = {min_dist}) of "
          f"{len(idx)} of {len(features)} galaxies' representations, coloured by "
          f"{context.label_column}{label_note}"
          + (f" and by {', '.join(extra)}" if extra else "") + ". Well-separated colours mean "
          "the representation encodes the label without having seen it.")
    return EvalResult(metrics={"n_points": int(len(idx)), "n_neighbors": int(n_neighbors),
                               "min_dist": float(min_dist), "n_epochs": int(n_epochs),
                               "color_by": list(extra)},
                      figures=figures, markdown=md, headline=2)  # the map: after the table
