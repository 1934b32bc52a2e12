"""Evaluators that draw: label_efficiency, umap, similar (and the search and montage under them)."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_probe import informative, make_galaxies

from astroclr.evaluate.context import EvalContext, EvalResult, run_evaluators
from astroclr.plugin.specs import AstroclrError


def _curve_result(name: str, model: str, label: str, values: dict[int, float]) -> EvalResult:
    """A hand-made classifier result with given mean balanced accuracy per N."""
    by_size = {str(n): {"n_train": n, "mean": {"balanced_accuracy": v, "accuracy": v},
                        "std": {"balanced_accuracy": 0.01, "accuracy": 0.01}}
               for n, v in values.items()}
    return EvalResult(metrics={"kind": "classifier", "majority_baseline": {
        "mean": {"balanced_accuracy": 0.5}}, "models": {model: {"label": label,
                                                               "by_size": by_size}}},
                      kind="classifier")


def _ctx(tmp_path, results):
    g = make_galaxies(n=40)
    return EvalContext(g, informative(g), tmp_path / "figures", results=dict(results))


def test_label_efficiency_ratio_table_and_plot(tmp_path, registry):
    results = {
        "probe": _curve_result("probe", "mlp", "SimCLR probe (MLP)",
                               {100: 0.70, 300: 0.80, 1000: 0.84, 3000: 0.86}),
        "pca": _curve_result("pca", "mlp", "PCA (MLP)", {100: 0.60, 300: 0.65, 3000: 0.79}),
    }
    ctx = _ctx(tmp_path, results)
    res = run_evaluators(registry, ["label_efficiency"], {}, ctx)["label_efficiency"]
    m = res.metrics
    # PCA reaches 0.79 at N=3000; the probe passes 0.79 first at N=300: 10x fewer labels
    assert m["ratio"] == pytest.approx(10.0) and m["simclr_n"] == 300 and m["baseline_n"] == 3000
    assert "10× fewer labels" in res.markdown
    assert "| PCA (MLP) | 0.600 ± 0.010 | 0.650 ± 0.010 | – | 0.790 ± 0.010 |" in res.markdown
    assert res.figures[0].name == "label_efficiency.png" and res.figures[0].stat().st_size > 1000


def test_label_efficiency_prefers_cnn_and_says_when_not_reached(tmp_path, registry):
    results = {
        "probe": _curve_result("probe", "linear", "SimCLR probe (linear)", {100: 0.7, 1000: 0.8}),
        "pca": _curve_result("pca", "linear", "PCA (linear)", {100: 0.6, 1000: 0.7}),
        "cnn": _curve_result("cnn", "cnn", "supervised CNN", {100: 0.65, 1000: 0.9}),
    }
    res = run_evaluators(registry, ["label_efficiency"], {}, _ctx(tmp_path, results))
    m = res["label_efficiency"].metrics
    assert m["ratio"] is None and m["baseline"] == "supervised CNN"
    assert "does not reach" in m["statement"]


def test_label_efficiency_without_inputs(tmp_path, registry):
    res = run_evaluators(registry, ["label_efficiency"], {}, _ctx(tmp_path, {}))
    assert res["label_efficiency"].figures == []
    assert "nothing to compare" in res["label_efficiency"].markdown
    only_probe = {"probe": _curve_result("probe", "mlp", "p", {10: 0.5})}
    res = run_evaluators(registry, ["label_efficiency"], {}, _ctx(tmp_path, only_probe))
    assert "neither cnn nor pca" in res["label_efficiency"].metrics["statement"]


def test_label_efficiency_after_real_evaluators(tmp_path, registry):
    g = make_galaxies(n=160)
    ctx = EvalContext(g, informative(g), tmp_path / "figures", seeds=(0,), train_sizes=(10, 40))
    res = run_evaluators(registry, ["probe", "pca", "label_efficiency"],
                         {"probe": {"models": ["linear"]}, "pca": {"models": ["linear"]}}, ctx)
    m = res["label_efficiency"].metrics
    assert set(m["curves"]) == {"SimCLR probe (linear)", "PCA (linear)"}
    assert m["statement"]
    assert (tmp_path / "figures" / "label_efficiency.png").is_file()


def test_no_two_label_efficiency_series_share_colour_and_dash():
    from astroclr_evaluators.label_efficiency import series_styles

    found = {f"{ev} ({model})": {"evaluator": ev, "model": model}
             for ev, models in {"probe": ("linear", "mlp"), "colours": ("linear", "mlp"),
                                "pca": ("linear", "mlp"), "untrained": ("linear", "mlp"),
                                "knn": ("knn",), "cnn": ("cnn",), "finetune": ("finetune",),
                                # evaluators and model kinds from other packages
                                "zoo": ("linear", "forest"), "other": ("boost",)}.items()
             for model in models}
    styles = series_styles(found)
    assert len(set(styles.values())) == len(found)
    colour = {c["evaluator"]: styles[label][0] for label, c in found.items()}
    dash = {c["model"]: styles[label][1] for label, c in found.items()}
    assert len(set(colour.values())) == len(colour)  # one colour per feature source
    assert len(set(map(str, dash.values()))) == len(dash)  # one dash per model kind
    assert styles["probe (linear)"][0] != styles["colours (linear)"][0]
    assert styles["probe (linear)"][1] == styles["colours (linear)"][1]


def test_many_feature_sources_still_get_colours_of_their_own():
    from astroclr_evaluators.label_efficiency import series_styles

    found = {f"e{i}": {"evaluator": f"e{i}", "model": "linear"} for i in range(30)}
    assert len(set(series_styles(found).values())) == 30


def test_label_efficiency_is_the_reports_headline(tmp_path, registry):
    results = {"probe": _curve_result("probe", "linear", "SimCLR probe (linear)", {10: 0.7}),
               "pca": _curve_result("pca", "linear", "PCA (linear)", {10: 0.6})}
    res = run_evaluators(registry, ["label_efficiency"], {}, _ctx(tmp_path, results))
    assert res["label_efficiency"].headline == 1


# -- umap ------------------------------------------------------------------------------------

def test_umap_figure_with_catalogue_colours(tmp_path, registry, monkeypatch):
    """The plotting path, with the 2-D embedding stubbed (the real UMAP is tested below)."""
    import astroclr_evaluators.umap_plot as up

    monkeypatch.setattr(up, "embed_2d", lambda f, n, d, s, e=None: f[:, :2].copy())
    g = make_galaxies(n=60, unlabelled=5)
    g.catalog["z"] = np.linspace(0, 0.2, 60)
    ctx = EvalContext(g, informative(g), tmp_path / "figures")
    res = run_evaluators(registry, ["umap"], {"umap": {"color_by": ["z"], "max_points": 50}},
                         ctx)["umap"]
    assert res.figures[0].is_file() and res.metrics["n_points"] == 50
    assert res.metrics["color_by"] == ["z"] and "coloured by label and by z" in res.markdown
    with pytest.raises(AstroclrError, match="evaluator 'umap': no catalogue column 'mass'"):
        run_evaluators(registry, ["umap"], {"umap": {"color_by": ["mass"]}}, ctx)


@pytest.mark.slow  # umap-learn's layout is JIT-compiled per process: ~10-25 s on 2 cores
def test_real_umap_and_numba_cache(tmp_path, registry, monkeypatch):
    """Real umap-learn on 80 galaxies; numba's compile cache goes to the user cache dir."""
    import os

    import astroclr_evaluators.umap_plot as up

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert up.numba_cache_dir() == tmp_path / "cache" / "astroclr" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.path.expanduser("~/.cache/astroclr/numba"))
    g = make_galaxies(n=80)
    ctx = EvalContext(g, informative(g, strength=5.0), tmp_path / "figures")
    res = run_evaluators(registry, ["umap"], {}, ctx)["umap"]
    coords = np.load(tmp_path / "figures" / "umap_coords.npy")
    assert coords.shape == (80, 3) and np.isfinite(coords).all()
    # the two classes land in different regions of the map
    labels = g.labels()[coords[:, 0].astype(int)]
    centre = [coords[labels == c, 1:].mean(0) for c in (0, 1)]
    spread = coords[:, 1:].std(0).mean()
    assert np.linalg.norm(centre[0] - centre[1]) > spread
    assert res.figures[0].stat().st_size > 1000


def test_numba_cache_directory_setting_order(tmp_path, monkeypatch):
    import astroclr_evaluators.umap_plot as up

    monkeypatch.delenv("ASTROCLR_NUMBA_CACHE", raising=False)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert up.numba_cache_dir() == tmp_path / "xdg" / "astroclr" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert up.numba_cache_dir() == tmp_path / "numba"
    monkeypatch.setenv("ASTROCLR_NUMBA_CACHE", str(tmp_path / "ours"))
    assert up.numba_cache_dir() == tmp_path / "ours"


def test_every_umap_function_compiles_into_the_disk_cache(tmp_path):
    """Not only the layout (the one function umap-learn marks cache=True): the fuzzy simplicial
    set and the rest were compiled afresh in every process, ~1 minute per run."""
    import os
    import subprocess
    import sys

    code = ("import astroclr_evaluators.umap_plot as up; up.import_umap(); "
            "import umap.umap_ as u; c = u.smooth_knn_dist._cache; "
            "print(type(c).__name__, c.cache_path)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["ASTROCLR_NUMBA_CACHE"] = str(tmp_path / "numba")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "FunctionCache"
    assert out[1].startswith(str(tmp_path / "numba"))


# -- similar -----------------------------------------------------------------------------------

def _embeddings(tmp_path, ids, reps):
    from astropy.table import Table

    t = Table()
    t["id"] = ids
    t["representation"] = reps
    t.write(tmp_path / "embeddings.fits")


def test_find_similar_cosine(tmp_path):
    from astroclr.session.similar import find_similar

    # Mean-free representations: centring leaves them unchanged, so plain cosines apply.
    reps = np.array([[1, 0], [10, 1], [0, 1], [-1, 0], [1, 1]], dtype=np.float32)
    reps = reps - reps.mean(axis=0)
    _embeddings(tmp_path, np.array([11, 12, 13, 14, 15]), reps)
    found = find_similar(tmp_path, 11, k=3)
    unit = reps / np.linalg.norm(reps, axis=1, keepdims=True)
    dist = 1 - unit @ unit[0]
    order = [11 + i for i in np.argsort(dist)[1:4]]
    assert [i for i, _ in found] == order
    assert found[0][1] == pytest.approx(np.sort(dist)[1], abs=1e-6)
    assert isinstance(found[0][0], int)
    assert len(find_similar(tmp_path, "11", k=10)) == 4  # k capped
    with pytest.raises(AstroclrError, match=r"id 99 is not in .*embeddings.fits \(5 galaxies"):
        find_similar(tmp_path, 99)
    with pytest.raises(AstroclrError, match=r"nowhere.embeddings.fits does not exist"):
        find_similar(tmp_path / "nowhere", 11)


def test_find_similar_ignores_a_common_offset(tmp_path):
    from astroclr.session.similar import find_similar

    rng = np.random.default_rng(0)
    reps = rng.normal(size=(20, 8)).astype(np.float32)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _embeddings(tmp_path / "a", np.arange(20), reps)
    _embeddings(tmp_path / "b", np.arange(20), reps + 50.0)  # raw cosines would all be ~1
    a, b = find_similar(tmp_path / "a", 3, k=5), find_similar(tmp_path / "b", 3, k=5)
    assert [i for i, _ in a] == [i for i, _ in b]


def test_find_similar_string_ids(tmp_path):
    from astroclr.session.similar import find_similar

    _embeddings(tmp_path, np.array(["a", "b", "c"]), np.eye(3, dtype=np.float32) + 0.1)
    assert len(find_similar(tmp_path, "a", 2)) == 2
    with pytest.raises(AstroclrError, match="id 'z' is not in"):
        find_similar(tmp_path, "z")


def test_find_similar_leaves_out_galaxies_without_a_finite_representation(tmp_path):
    from astroclr.session.similar import find_similar

    reps = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    reps[2] = np.nan  # left out: with it, the mean (and so every distance) would be NaN
    _embeddings(tmp_path, np.arange(6), reps)
    found = find_similar(tmp_path, 0, k=10)
    assert [i for i, _ in found if i == 2] == [] and len(found) == 4
    assert all(np.isfinite(d) for _, d in found)


def test_nearest_excludes_the_query_however_its_id_is_written():
    from astroclr.api import nearest

    reps = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    ids = np.array([11, 12, 13, 14, 15])
    for given in (12, "12", " 12", np.int64(12)):
        found = nearest(ids, reps, given, k=10)
        assert len(found) == 4 and 12 not in [i for i, _ in found], given
    with pytest.raises(AstroclrError, match=r"id 'x' is not in the dataset: its ids are integers"):
        nearest(ids, reps, "x", where="the dataset")


def test_montage_draws_a_query_and_its_neighbours(tmp_path):
    from astroclr.evaluate.montage import montage

    g = make_galaxies(n=30)
    nb = [(int(g.ids[i]), 0.1 * i) for i in range(1, 7)] + [(-1, 0.9)]  # -1: not among them
    path = montage(g, str(g.ids[0]), nb, tmp_path / "m.png")
    assert path.is_file() and path.stat().st_size > 1000
    with pytest.raises(AstroclrError, match="id -5 is not among the galaxies given to draw"):
        montage(g, -5, nb, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_an_id_with_control_characters_is_drawn_escaped_without_a_font_warning(tmp_path):
    import warnings

    from astroclr.evaluate.montage import Panel, draw_montage, printable

    assert printable("a\x00b\tc") == "a\\x00b\\tc"
    assert printable("NGC 4414 ∼ é") == "NGC 4414 ∼ é"  # printable text is kept as it is
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of each glyph a font lacks
        path = draw_montage([[Panel("a\x00b", lead=True), Panel("x\x1by")]], tmp_path / "m.png",
                            "query a\x00b")
    assert path.is_file()


def test_similar_evaluator(tmp_path, registry):
    g = make_galaxies(n=60, n_classes=3)
    ctx = EvalContext(g, informative(g, strength=6.0), tmp_path / "figures")
    res = run_evaluators(registry, ["similar"], {"similar": {"k": 4, "examples": 3}}, ctx)["similar"]
    assert len(res.figures) == 3 and all(f.is_file() for f in res.figures)
    assert all(len(v) == 4 for v in res.metrics["neighbours"].values())
    assert "100% of its labelled neighbours share its label" in res.markdown
    chosen = run_evaluators(registry, ["similar"], {"similar": {"ids": [str(g.ids[5])]}},
                            ctx)["similar"]
    assert list(chosen.metrics["neighbours"]) == [str(g.ids[5])]
    with pytest.raises(AstroclrError, match="evaluator 'similar': id '7' is not in"):
        run_evaluators(registry, ["similar"], {"similar": {"ids": ["7"]}}, ctx)
