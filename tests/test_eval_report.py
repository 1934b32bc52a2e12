"""metrics.json, report.md and the self-contained report.html."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pytest

from astroclr.evaluate.context import EvalResult
from astroclr.session.report import markdown_to_html, to_jsonable, write_metrics, write_report


def _png(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _results(run_dir: Path) -> dict[str, EvalResult]:
    fig = _png(run_dir / "figures" / "curve.png")
    probe = EvalResult(
        metrics={"acc": np.float32(0.75), "n": np.int64(3), "auc": float("nan"),
                 "curve": np.array([0.5, 0.75]), "nested": {"cm": np.eye(2, dtype=int)},
                 "sizes": (1, 2)},
        figures=[fig],
        markdown="Probe text with **bold**.\n\n| model | acc |\n|---|---|\n| linear | 0.75 ± 0.01 |\n",
        seconds=1.5)
    knn = EvalResult(metrics={"k": 20}, markdown="### Details\n\n- one\n- two", seconds=0.2)
    return {"probe": probe, "knn": knn}


SUMMARY = {"title": "Test run", "dataset": "sdss", "backbone": "resnet18", "n_galaxies": 400,
           "bands": ("g", "r", "i"), "train_seconds": 90.0, "final_loss": np.float64(4.2),
           "device": "cpu", "config": {"train": {"epochs": 2}, "seed": np.int64(0)}}


def test_metrics_json_has_every_number(tmp_path):
    results = _results(tmp_path)
    path = write_metrics(tmp_path, SUMMARY, results)
    assert path == tmp_path / "metrics.json"
    doc = json.loads(path.read_text())
    probe = doc["evaluators"]["probe"]
    assert probe["metrics"]["acc"] == pytest.approx(0.75)
    assert probe["metrics"]["n"] == 3 and probe["metrics"]["auc"] is None  # NaN -> null
    assert probe["metrics"]["curve"] == [0.5, 0.75]
    assert probe["metrics"]["nested"]["cm"] == [[1, 0], [0, 1]]
    assert probe["seconds"] == 1.5 and probe["figures"] == ["figures/curve.png"]
    assert doc["summary"]["bands"] == ["g", "r", "i"] and doc["summary"]["config"]["seed"] == 0
    assert doc["evaluators"]["knn"]["metrics"] == {"k": 20}
    # atomic write: no temporary file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "metrics.json"]


def test_metrics_json_overwrites_atomically_and_keeps_old_on_failure(tmp_path, monkeypatch):
    write_metrics(tmp_path, {"title": "first"}, {})
    import astroclr.files as files

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        write_metrics(tmp_path, {"title": "second"}, {})
    assert json.loads((tmp_path / "metrics.json").read_text())["summary"]["title"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_to_jsonable_types():
    assert to_jsonable({1: np.bool_(True), "x": Path("a/b"), "y": {np.float64(math.inf)}}) == {
        "1": True, "x": "a/b", "y": [None]}


def test_report_markdown_and_self_contained_html(tmp_path):
    results = _results(tmp_path)
    md, page = write_report(tmp_path, SUMMARY, results)
    text = md.read_text()
    assert text.startswith("# Test run")
    assert "| dataset | sdss |" in text and "| backbone | resnet18 |" in text
    assert "90.0 (1.5 min)" in text
    assert "## probe" in text and "## knn" in text
    assert "#### Details" in text  # evaluator headings pushed below the section heading
    assert "](figures/curve.png)" in text
    html = page.read_text()
    assert "<title>Test run</title>" in html and "<style>" in html
    png = (tmp_path / "figures" / "curve.png").read_bytes()
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in html
    assert "figures/curve.png\"" not in html  # embedded, not linked
    assert "<table>" in html and "<td>0.75 ± 0.01</td>" in html and "<th>model</th>" in html
    assert "<strong>bold</strong>" in html and "<li>one</li>" in html
    assert "&quot;epochs&quot;: 2" in html or '"epochs": 2' in html  # config block
    assert "<h2>probe</h2>" in html


def test_report_with_missing_summary_keys_and_no_results(tmp_path):
    md, page = write_report(tmp_path, {}, {})
    assert md.read_text().startswith("# astroclr run")
    assert "<h1>astroclr run</h1>" in page.read_text()


def test_report_notes_missing_figure(tmp_path):
    res = {"x": EvalResult(figures=[tmp_path / "figures" / "gone.png"], markdown="text")}
    _, page = write_report(tmp_path, {"title": "t"}, res)
    assert "figure not found" in page.read_text()


def test_markdown_to_html_escapes_and_tables(tmp_path):
    html = markdown_to_html("a <b> & c\n\n| x \\| y | z |\n|---|---|\n| 1 | 2 |\n", tmp_path)
    assert "a &lt;b&gt; &amp; c" in html
    assert "<th>x | y</th>" in html and "<td>2</td>" in html


def test_report_of_real_evaluators(tmp_path, registry):
    """End to end on a tiny run: probe + pca results render into both files."""
    from astroclr.data.galaxies import Galaxies, SurveyInfo
    from astroclr.evaluate.context import EvalContext, run_evaluators

    rng = np.random.default_rng(0)
    labels = np.arange(80) % 2
    images = rng.normal(size=(80, 1, 6, 6)).astype(np.float32)
    images[:, 0, 0, 0] += 3 * labels
    g = Galaxies.from_arrays(images, SurveyInfo.create("toy", ("r",), 0.4, {"r": 1.0}),
                             labels=labels)
    reps = rng.normal(size=(80, 4)).astype(np.float32) + 3 * labels[:, None]
    ctx = EvalContext(g, reps, tmp_path / "figures", seeds=(0,), train_sizes=(30,))
    results = run_evaluators(registry, ["probe", "pca"],
                             {"probe": {"models": ["linear"]}, "pca": {"models": ["linear"]}}, ctx)
    write_metrics(tmp_path, {"title": "tiny"}, results)
    md, page = write_report(tmp_path, {"title": "tiny"}, results)
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["evaluators"]["probe"]["metrics"]["models"]["linear"]["by_size"]["30"]["n_train"] == 30
    assert "SimCLR probe (linear)" in md.read_text() and "PCA (linear)" in page.read_text()


def test_the_report_opens_with_the_answer(tmp_path):
    """Headline sections (the label-efficiency table and figure, then the map) come first,
    the run's facts, timings and other evaluators after."""
    results = _results(tmp_path)
    fig = _png(tmp_path / "figures" / "label_efficiency.png")
    results["umap"] = EvalResult(markdown="The map.", headline=2)
    results["label_efficiency"] = EvalResult(
        markdown="| method | N=100 |\n|---|---|\n| SimCLR probe (linear) | 0.800 ± 0.010 |",
        figures=[fig], headline=1)
    md, page = write_report(tmp_path, SUMMARY, results)
    text = md.read_text()
    order = [text.index(h) for h in ("## label_efficiency", "| SimCLR probe (linear) | 0.800",
                                      "](figures/label_efficiency.png)", "## umap", "## Run",
                                      "## Evaluation time", "## probe", "## knn")]
    assert order == sorted(order)
    assert text.count("## label_efficiency") == 1  # not repeated with the details
    html = page.read_text()
    assert html.index("<h2>label_efficiency</h2>") < html.index("<h2>umap</h2>") < \
        html.index("<h2>Run</h2>")
