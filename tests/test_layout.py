"""The shape of the code base: rules that keep the core readable as it grows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "astroclr"


def _module(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _imports(path: Path) -> set[str]:
    """Every astroclr module ``path`` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("astroclr"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("astroclr")}
    return out


def test_no_import_cycle_in_the_core():
    modules = {_module(p): p for p in CORE.rglob("*.py")}
    graph = {m: (_imports(p) & set(modules)) - {m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(graph[m]):
            assert state.get(dep) != 1, f"import cycle: {' -> '.join(path + [dep])}"
            if dep not in state:
                visit(dep, path + [dep])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def _unit(module: str) -> str | None:
    """The layer an astroclr module belongs to: its sub-package (``astroclr.runs.rundir`` ->
    ``runs``), or a top-level module itself (``astroclr.config`` -> ``config``)."""
    parts = module.split(".")
    if parts[0] != "astroclr":
        return None
    if len(parts) == 1:
        return "__init__"
    return parts[1] if (CORE / parts[1]).is_dir() or (CORE / f"{parts[1]}.py").is_file() else None


def _unit_graph(core: Path) -> dict[str, dict[str, set[str]]]:
    """``{layer: {layer it imports: {files whose imports say so}}}``, every import counted:
    at the top, inside a function, under ``TYPE_CHECKING`` (a type named across layers ties
    them as much as a call does)."""
    graph: dict[str, dict[str, set[str]]] = {}
    root = core.parent
    for path in core.rglob("*.py"):
        rel = path.relative_to(core).parts
        src = rel[0] if len(rel) > 1 else path.stem
        for imported in _imports(path):
            dst = _unit(imported)
            if dst is not None and dst != src:
                graph.setdefault(src, {}).setdefault(dst, set()).add(
                    str(path.relative_to(root)))
    return graph


def _cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, {})):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep, path + [dep])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_sub_packages_form_a_dag():
    """The layers import one way (plugin, data, train, evaluate, runs, classify, session, cli,
    with the top-level modules among them), counting imports inside functions: a cycle is
    named with the files that close it."""
    graph = _unit_graph(CORE)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle between layers: " + " -> ".join(cycle) + "; " + "; ".join(
        f"{a} -> {b} in {', '.join(sorted(graph[a][b]))}" for a, b in zip(cycle, cycle[1:]))


def test_core_is_grouped_in_small_modules():
    from astroclr.moved import MOVED, PACKAGES

    # the rest of the top level: 0.1.0's modules, kept as aliases (tests/test_contract.py)
    aliases = {f"{m.split('.')[1]}.py" for m in MOVED if m not in PACKAGES}
    flat = sorted(p.name for p in CORE.glob("*.py") if p.name not in aliases)
    assert flat == ["__init__.py", "api.py", "config.py", "files.py", "lock.py", "moved.py",
                    "output.py", "progress.py", "resolved.py", "schema.py", "testing.py",
                    "version.py"], flat
    big = [(str(p.relative_to(ROOT)), n) for p in CORE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 400]
    assert big == []


def test_run_directory_file_names_are_spelled_in_one_module():
    names = re.compile(r"[\"'](config\.toml|run\.json|model\.pt|embeddings\.fits|metrics\.json|"
                       r"report\.md|report\.html|last\.ckpt|schedule\.json|representations\.npy)[\"']")
    spelled = sorted({str(p.relative_to(ROOT)) for p in CORE.rglob("*.py")
                      if names.search(p.read_text())})
    # classify/classifier.py owns a classifier directory, which has a metrics.json of its own
    assert spelled == ["astroclr/classify/classifier.py", "astroclr/runs/rundir.py"]


def test_plugins_import_only_the_public_surface():
    sources = list((ROOT / "plugins").rglob("*.py")) + list(
        (ROOT / "examples" / "astroclr-euclid" / "astroclr_euclid").rglob("*.py"))
    offenders = sorted({f"{p.relative_to(ROOT)}: {imp}" for p in sources for imp in _imports(p)
                        if imp.split(".")[0] == "astroclr" and imp not in ("astroclr", "astroclr.api")
                        and not imp.startswith("astroclr.api.")})
    assert offenders == []


def test_plugin_folders_are_named_as_imported():
    for folder in (ROOT / "plugins").iterdir():
        if folder.is_dir() and (folder / "__init__.py").exists():
            assert folder.name.startswith("astroclr_"), folder
            assert f'"{folder.name}" = "plugins/{folder.name}"' in (ROOT / "pyproject.toml").read_text()
