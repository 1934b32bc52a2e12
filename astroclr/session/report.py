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
    from astroclr.session.rundir import RunDir


#: summary keys shown first in the report, with their display names; others follow as given
_SUMMARY_KEYS = {
    "dataset": "dataset", "backbone": "backbone", "method": "method", "n_galaxies": "galaxies",
    "bands": "bands",
    "image_size": "image size (px)", "epochs": "epochs", "steps": "optimiser steps",
    "train_seconds": "training time (s)", "final_loss": "final loss",
    "images_per_second": "images / second", "device": "device",
}


def _rundir(run_dir: "str | Path | RunDir") -> "RunDir":
    from astroclr.session.rundir import RunDir

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


def _markdown(run_dir: Path, summary: Mapping[str, Any],
              results: Mapping[str, "EvalResult"]) -> str:
    title = str(summary.get("title") or "astroclr run")
    lines = [f"# {title}", ""]
    if summary:
        lines += _summary_markdown(summary)
    if results:
        lines += ["## Evaluation time", "", "| evaluator | seconds |", "|---|---|"]
        lines += [f"| {name} | {r.seconds:.1f} |" for name, r in results.items()]
        lines.append("")
    for name, r in results.items():
        lines += [f"## {name}", ""]
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


def _inline(text: str, run_dir: Path) -> str:
    """Inline Markdown (code, bold, italic, images, links) to HTML; images embedded."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        s = html.escape(part, quote=False)
        s = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", lambda m: _img(m.group(1), m.group(2), run_dir), s)
        s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?!\w)", r"<em>\1</em>", s)
        out.append(s)
    return "".join(out)


def _img(alt: str, src: str, run_dir: Path) -> str:
    path = Path(html.unescape(src))
    path = path if path.is_absolute() else run_dir / path
    if path.suffix.lower() == ".png" and path.is_file():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
    return f'<p><em>(figure not found: {html.escape(str(src))})</em></p>'


def _table(rows: list[str], run_dir: Path) -> str:
    def cells(row: str) -> list[str]:
        row = row.strip()
        row = row[1:] if row.startswith("|") else row
        row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
        return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)]

    head = cells(rows[0])
    body = [cells(r) for r in rows[2:]]
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_inline(c, run_dir)}</th>" for c in head)
           + "</tr></thead>", "<tbody>"]
    for r in body:
        out.append("<tr>" + "".join(f"<td>{_inline(c, run_dir)}</td>" for c in r) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


_INTERACTIVE = re.compile(r"^\[interactive: ([^\]]*)\]\(([^)]+\.html)\)$")


def _frame(line: str, run_dir: Path) -> str:
    """An interactive figure (a self-contained HTML page) in an ``<iframe srcdoc>``, so the
    report stays one file and the page's script and style stay its own; a link if missing."""
    m = _INTERACTIVE.match(line)
    assert m is not None
    path = Path(m.group(2))
    path = path if path.is_absolute() else run_dir / path
    if not path.is_file():
        return f'<p><a href="{html.escape(m.group(2))}">{html.escape(m.group(1))}</a></p>'
    doc = html.escape(path.read_text(encoding="utf-8"), quote=True)
    return (f'<iframe title="{html.escape(m.group(1))}" srcdoc="{doc}" style="width:100%;'
            f'height:720px;border:1px solid #ddd"></iframe>')


def markdown_to_html(text: str, run_dir: Path) -> str:
    """The small subset of Markdown that astroclr's reports use, as HTML.

    Headings, paragraphs, pipe tables, bullet lists, fenced code, raw HTML lines (such as
    ``<details>``), inline code/bold/italic/links and images (embedded as base64 PNG).
    """
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    i = 0

    def flush() -> None:
        if para:
            out.append("<p>" + _inline(" ".join(para), run_dir) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out.append("<pre><code>" + html.escape("\n".join(block)) + "</code></pre>")
            i += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2), run_dir)}</h{level}>")
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(
                r"^\|?\s*:?-{3,}", lines[i + 1].strip()):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out.append(_table(rows, run_dir))
            continue
        elif re.match(r"^[-*] ", stripped):
            flush()
            items = []
            while i < len(lines) and re.match(r"^[-*] ", lines[i].strip()):
                items.append("<li>" + _inline(lines[i].strip()[2:], run_dir) + "</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif stripped.startswith("<") and stripped.endswith(">"):
            flush()
            out.append(stripped)  # our own raw HTML (details/summary)
        elif _INTERACTIVE.match(stripped):
            flush()
            out.append(_frame(stripped, run_dir))
        elif stripped.startswith("!["):
            flush()
            out.append(_inline(stripped, run_dir))
        elif not stripped:
            flush()
        else:
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)


def write_report(run_dir: "str | Path | RunDir", summary: Mapping[str, Any],
                 results: Mapping[str, "EvalResult"]) -> tuple[Path, Path]:
    """Write ``run_dir/report.md`` (figures linked) and a self-contained ``report.html``."""
    rundir = _rundir(run_dir)
    run_dir = rundir.path
    text = _markdown(run_dir, summary, results)
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
