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


#: imports that point back up on purpose, each inside one convenience method:
#: ``astroclr.load(run).finetune(...)`` runs ``astroclr finetune``, which loads run models
ALLOWED_UPWARD = {("astroclr.session.trained", "astroclr.classify.apply")}


def test_no_import_cycle_in_the_core():
    modules = {_module(p): p for p in CORE.rglob("*.py")}
    graph = {m: {d for d in (_imports(p) & set(modules)) - {m} if (m, d) not in ALLOWED_UPWARD}
             for m, p in modules.items()}
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
    assert spelled == ["astroclr/classify/classifier.py", "astroclr/session/rundir.py"]


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
