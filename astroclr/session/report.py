"""A run's report: ``metrics.json`` (every number) and ``report.md`` / ``report.html`` (to read).

``metrics.json`` is for machines: the run summary and every evaluator's metrics, numpy types
converted, NaN written as ``null``, written atomically so a crash never leaves half a file.
``report.html`` is self-contained (figures embedded as base64 PNG) so it can be mailed or
attached to a paper's supplementary material as one file.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from astroclr.files import atomic_write, to_jsonable, write_json

if TYPE_CHECKING:
    from astroclr.evaluate.context import EvalResult
    from astroclr.runs.rundir import RunDir


#: summary keys shown first in the report, with their display names; others follow as given
_SUMMARY_KEYS = {
    "dataset": "dataset", "backbone": "backbone", "method": "method", "n_galaxies": "galaxies",
    "bands": "bands",
    "image_size": "image size (px)", "epochs": "epochs", "steps": "optimiser steps",
    "train_seconds": "training time (s)", "final_loss": "final loss",
    "images_per_second": "images / second", "device": "device",
}


def _rundir(run_dir: "str | Path | RunDir") -> "RunDir":
    from astroclr.runs.rundir import RunDir

    return run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)


def write_metrics(run_dir: "str | Path | RunDir", summary: Mapping[str, Any],
                  results: Mapping[str, "EvalResult"]) -> Path:
    """Write ``run_dir/metrics.json``: the summary and each evaluator's metrics, seconds, figures."""
    rundir = _rundir(run_dir)
    run_dir = rundir.path
    doc = {
        "summary": to_jsonable(summary),
        "evaluators": {
            name: {
                "seconds": to_jsonable(float(r.seconds)),
                "figures": [_relative(Path(f), run_dir) for f in r.figures],
                "metrics": to_jsonable(r.metrics),
            }
            for name, r in results.items()
        },
    }
    # NaN and infinities become null (strict JSON readers refuse them)
    path = write_json(rundir.metrics, doc)
    return path


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


# -- Markdown ---------------------------------------------------------------------------------

def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt_value(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items())
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _summary_markdown(summary: Mapping[str, Any]) -> list[str]:
    lines = ["## Run", "", "| | |", "|---|---|"]
    shown = [k for k in _SUMMARY_KEYS if k in summary]
    shown += [k for k in summary if k not in _SUMMARY_KEYS and k not in ("title", "config")]
    for key in shown:
        value = summary[key]
        if key == "train_seconds" and isinstance(value, (int, float)):
            text = f"{value:.1f} ({value / 60:.1f} min)"
        else:
            text = _fmt_value(to_jsonable(value))
        lines.append(f"| {_cell(_SUMMARY_KEYS.get(key, key.replace('_', ' ')))} | {_cell(text)} |")
    lines.append("")
    config = summary.get("config")
    if config:
        lines += ["<details><summary>Configuration</summary>", "", "```json",
                  json.dumps(to_jsonable(config), indent=2), "```", "", "</details>", ""]
    return lines


def _section(name: str, r: "EvalResult", run_dir: Path) -> list[str]:
    lines = [f"## {name}", ""]
    text = (r.markdown or "").strip()
    if text:
        # evaluators write level-2/3 headings for their own parts: push them one level down
        text = re.sub(r"(?m)^(#{1,5}) ", lambda m: "#" + m.group(1) + " ", text)
        lines += [text, ""]
    for fig in r.figures:
        rel = _relative(Path(fig), run_dir)
        if Path(fig).suffix.lower() == ".html":  # an interactive figure: embedded in HTML
            lines += [f"[interactive: {name} {Path(fig).stem}]({rel})", ""]
        else:
            lines += [f"![{name}: {Path(fig).stem}]({rel})", ""]
    return lines


def _markdown(run_dir: Path, summary: Mapping[str, Any], results: Mapping[str, "EvalResult"],
              curves: Path | None = None) -> str:
    """The answer first (the sections with a headline: the label-efficiency table and figure,
    the map), then the run's facts, its training curves, the evaluation times, the details."""
    title = str(summary.get("title") or "astroclr run")
    lines = [f"# {title}", ""]
    headline = sorted((r.headline, i, name) for i, (name, r) in enumerate(results.items())
                      if r.headline is not None)
    for _, _, name in headline:
        lines += _section(name, results[name], run_dir)
    if summary:
        lines += _summary_markdown(summary)
    if curves is not None:
        lines += ["## Training", "", "Loss and learning rate per optimiser step "
                  "(`logs/metrics.csv`).", "",
                  f"![training curves]({_relative(curves, run_dir)})", ""]
    if results:
        lines += ["## Evaluation time", "", "| evaluator | seconds |", "|---|---|"]
        lines += [f"| {name} | {r.seconds:.1f} |" for name, r in results.items()]
        lines.append("")
    shown = {name for _, _, name in headline}
    for name, r in results.items():
        if name not in shown:
            lines += _section(name, r, run_dir)
    return "\n".join(lines).rstrip() + "\n"


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #446; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccd; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccd; padding: .3em .6em; text-align: left; }
th { background: #eef; }
tr:nth-child(even) td { background: #f8f8fc; }
img { max-width: 100%; border: 1px solid #ddd; margin: .5em 0; }
pre { background: #f4f4f8; padding: .7em; overflow-x: auto; font-size: .85em; }
code { background: #f4f4f8; padding: 0 .2em; }
"""


def _image(self: Any, tokens: list, idx: int, options: Any, env: dict) -> str:
    """An image embedded as base64 PNG, so the page is one file; a note if it is missing."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    path = Path(src)
    path = path if path.is_absolute() else env["run_dir"] / path
    if path.suffix.lower() == ".png" and path.is_file():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
    return f"<em>(figure not found: {html.escape(src)})</em>"


def _frame(label: str, src: str, run_dir: Path) -> str:
    """An interactive figure (a self-contained HTML page) in an ``<iframe srcdoc>``, so the
    report stays one file and the page's script and style stay its own; a link if missing."""
    path = Path(src)
    path = path if path.is_absolute() else run_dir / path
    if not path.is_file():
        return f'<p><a href="{html.escape(src)}">{html.escape(label)}</a></p>\n'
    doc = html.escape(path.read_text(encoding="utf-8"), quote=True)
    return (f'<iframe title="{html.escape(label)}" srcdoc="{doc}" style="width:100%;'
            f'height:720px;border:1px solid #ddd"></iframe>\n')


def _interactive_frames(tokens: list, run_dir: Path) -> list:
    """Paragraphs that are only a link ``[interactive: ...](page.html)`` become iframes."""
    from markdown_it.token import Token

    out: list = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kids = tok.children or []
        if (tok.type == "inline" and len(kids) == 3 and kids[0].type == "link_open"
                and kids[1].type == "text" and kids[1].content.startswith("interactive: ")
                and str(kids[0].attrGet("href") or "").endswith(".html")
                and out and out[-1].type == "paragraph_open"):
            out.pop()  # the paragraph_open; its paragraph_close is skipped below
            block = Token("html_block", "", 0)
            block.content = _frame(kids[1].content[len("interactive: "):],
                                   str(kids[0].attrGet("href")), run_dir)
            out.append(block)
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def markdown_to_html(text: str, run_dir: Path) -> str:
    """The report's Markdown as HTML (CommonMark and pipe tables, by markdown-it-py): images
    embedded as base64 PNG, interactive figures in iframes, raw HTML blocks (``<details>``)
    kept, any other ``<`` in text escaped."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table").disable("html_inline")
    md.add_render_rule("image", _image)
    tokens = _interactive_frames(md.parse(text), run_dir)
    return md.renderer.render(tokens, md.options, {"run_dir": run_dir})


def write_report(run_dir: "str | Path | RunDir", summary: Mapping[str, Any],
                 results: Mapping[str, "EvalResult"]) -> tuple[Path, Path]:
    """Write ``run_dir/report.md`` (figures linked) and a self-contained ``report.html``;
    the training curves are drawn from the run's log into its figures when it has one."""
    from astroclr.session.curves import plot_training_curves

    rundir = _rundir(run_dir)
    run_dir = rundir.path
    curves = plot_training_curves(rundir.training_log, rundir.figure("training_curves"))
    text = _markdown(run_dir, summary, results, curves)
    md_path = atomic_write(rundir.report_md, text)
    title = html.escape(str(summary.get("title") or "astroclr run"))
    body = markdown_to_html(text, run_dir)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
            f"</body>\n</html>\n")
    html_path = atomic_write(rundir.report_html, page)
    return md_path, html_path


def figure_paths(results: Mapping[str, "EvalResult"]) -> Iterable[Path]:
    """Every figure of every evaluator (e.g. to copy them elsewhere)."""
    for r in results.values():
        yield from (Path(f) for f in r.figures)
