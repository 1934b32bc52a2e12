"""The retrieval evaluator: precision@k of same-class neighbours."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_probe import informative, make_galaxies

from astroclr.evaluate.context import EvalContext, run_evaluators


def test_precision_at_k_counts_same_class_neighbours():
    from astroclr_evaluators.retrieval import chance, precision_at

    # two sides, x = +1 and x = -1; rows 0-3 (class 0) and 9 (class 1) on the + side, rows
    # 5-8 (class 1) and 4 (class 0) on the - side; y orders the rows within a side
    x = np.array([1, 1, 1, 1, -1, -1, -1, -1, -1, 1], dtype=np.float32)
    y = np.array([0, 0.1, 0.2, 0.3, 0, 0.1, 0.2, 0.3, 0.4, 0.4], dtype=np.float32)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    found = precision_at(np.c_[x, y], labels, np.array([0, 4, 9]), [1, 3])
    # query 0: rows 1, 2, 3 (all class 0); queries 4 and 9 are among the other class
    assert found[1] == pytest.approx(1 / 3) and found[3] == pytest.approx(1 / 3)
    assert chance(labels, np.array([0, 4, 9])) == pytest.approx(0.5)


def test_retrieval_evaluator_reports_representation_pca_and_chance(tmp_path, registry):
    g = make_galaxies(n=160, n_classes=2)
    ctx = EvalContext(g, informative(g, strength=6.0), tmp_path / "figures", seeds=(0, 1))
    res = run_evaluators(registry, ["retrieval"], {}, ctx)["retrieval"]
    models = res.metrics["models"]
    assert set(models) == {"representation", "pca", "random"}  # no backbone: untrained left out
    assert res.metrics["k"] == [1, 10, 50]
    assert models["representation"]["by_k"]["10"]["mean"] > 0.95
    assert models["random"]["by_k"]["10"]["mean"] == pytest.approx(0.5, abs=0.05)
    assert "| SimCLR representation | " in res.markdown and "untrained left out" in res.markdown
    assert res.kind == "generic"
