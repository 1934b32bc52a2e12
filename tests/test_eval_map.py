"""The interactive UMAP map: a self-contained page, its data, and its place in report.html."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
from test_eval_probe import informative, make_galaxies

from astroclr.evaluate.context import EvalContext, EvalResult, run_evaluators


def page_data(text: str) -> tuple[dict, list]:
    data = json.loads(re.search(r"const D = (.*);\n", text).group(1))
    sheets = json.loads(re.search(r"const SHEETS = (.*);\n", text).group(1))
    return data, sheets


def test_map_page_holds_points_neighbours_and_thumbnails(tmp_path):
    from PIL import Image

    from astroclr.evaluate.index import NeighbourIndex
    from astroclr_evaluators.umap_map import write_map

    g = make_galaxies(n=90)
    g.catalog["id"] = np.array([f"G{i}" for i in range(89)] + ["</script><script>x(1)//"])
    reps = informative(g)
    rows = np.arange(5, 90)
    coords = np.random.default_rng(0).normal(size=(len(rows), 2)).astype(np.float32)
    ctx = EvalContext(g, reps, tmp_path / "figures")
    path = write_map(ctx, rows, coords, g.labels()[rows], tmp_path / "map.html", k=4)
    text = path.read_text()
    assert "<script>x(1)" not in text and "cdn" not in text.lower() and "http" not in text
    data, sheets = page_data(text)
    assert data["n"] == 85 and data["ids"][-1] == "</script><script>x(1)//"
    nb = np.frombuffer(base64.b64decode(data["nb"]), dtype=np.int32).reshape(85, 4)
    expected, _ = NeighbourIndex.build(reps[rows]).search(reps[rows], 4, exclude=np.arange(85))
    np.testing.assert_array_equal(nb, expected)
    x = np.frombuffer(base64.b64decode(data["x"]), dtype=np.float32)
    np.testing.assert_array_equal(x, coords[:, 0])
    sheet = Image.open(io.BytesIO(base64.b64decode(sheets[0])))
    assert sheet.format == "JPEG" and sheet.size == (64 * 8, 2 * 8)  # 85 thumbnails of 8 px
    assert {e["name"] for e in data["legend"]} == {"class0", "class1"}


def test_umap_evaluator_adds_the_map_and_the_report_embeds_it(tmp_path, registry, monkeypatch):
    import astroclr_evaluators.umap_plot as up
    from astroclr.session.report import write_report

    monkeypatch.setattr(up, "embed_2d", lambda f, n, d, s, e=None: f[:, :2].copy())
    g = make_galaxies(n=40)
    ctx = EvalContext(g, informative(g), tmp_path / "figures")
    res = run_evaluators(registry, ["umap"], {}, ctx)["umap"]
    assert [f.name for f in res.figures] == ["umap.png", "umap_map.html"]
    md, html_path = write_report(tmp_path, {"title": "t"}, {"umap": res})
    assert "[interactive: umap umap_map](figures/umap_map.html)" in md.read_text()
    page = html_path.read_text()
    assert page.count("<iframe") == 1 and 'srcdoc="&lt;!DOCTYPE html&gt;' in page
    off = run_evaluators(registry, ["umap"], {"umap": {"interactive": False}}, ctx)["umap"]
    assert [f.name for f in off.figures] == ["umap.png"]


def test_report_links_a_missing_interactive_figure(tmp_path):
    from astroclr.session.report import write_report

    res = EvalResult(figures=[tmp_path / "figures" / "gone.html"], markdown="x")
    _, html_path = write_report(tmp_path, {"title": "t"}, {"e": res})
    assert '<a href="figures/gone.html">' in html_path.read_text()
