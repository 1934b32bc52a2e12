"""The plugin manager: loads the ``astroclr`` entry points and looks parts up by name.

Built-in plugins come through the same entry-point group as third-party ones. The environment
variable ``ASTROCLR_PLUGINS`` restricts which *external* plugins load: a comma-separated list
of entry-point names (empty: none). Built-ins (those of the ``astroclr`` distribution) always
load. A plugin that fails to import is reported in one line on stderr naming it, its package
and, when it used a path that moved, the new one; the rest keeps working. A hook
implementation with no matching spec is an error at start-up.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Iterator

import pluggy

from astroclr.plugin import hookspecs
from astroclr.plugin.specs import KINDS, SPEC_TYPES, PluginError, Provided

ENTRY_POINT_GROUP = "astroclr"
ENV_ALLOW = "ASTROCLR_PLUGINS"
CORE_DISTRIBUTION = "astroclr"

_HOOKS = {
    "dataset": "astroclr_datasets",
    "augmentation": "astroclr_augmentations",
    "backbone": "astroclr_backbones",
    "method": "astroclr_methods",
    "evaluator": "astroclr_evaluators",
    "command": "astroclr_commands",
    "model": "astroclr_models",
}


__all__ = ["Registry", "PluginError", "get_registry", "reset_registry"]


class Registry:
    """The loaded plugins and the parts they provide, looked up by kind and name."""

    def __init__(self, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._packages: dict[str, tuple[str, str]] = {}
        self._cache: dict[str, dict[str, Provided]] | None = None
        if load_entry_points:
            self._load_entry_points()
        self._check()

    # -- loading -----------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        allow_env = os.environ.get(ENV_ALLOW)
        allowed = None if allow_env is None else {n.strip() for n in allow_env.split(",") if n.strip()}
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            package, version = _distribution(ep)
            if allowed is not None and package != CORE_DISTRIBUTION and ep.name not in allowed:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                _report(f"plugin {ep.name!r} (package {_named(package, version)}) failed to load "
                        f"and is skipped: {_reason(exc)}")
                continue
            self.register(module, ep.name, package=package, version=version, check=False)

    def register(
        self,
        plugin: Any,
        name: str,
        package: str = "(registered in code)",
        version: str = "",
        check: bool = True,
    ) -> None:
        """Register a plugin object or module (e.g. for one test, or from a notebook)."""
        try:
            self.pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r} from {package!r} cannot be registered: {exc}") from exc
        self._packages[name] = (package, version)
        self._cache = None
        if check:
            self._check()

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        self.pm.unregister(name=name)
        self._packages.pop(name, None)
        self._cache = None

    @contextlib.contextmanager
    def registered(self, plugin: Any, name: str) -> Iterator["Registry"]:
        """Register ``plugin`` for the duration of a ``with`` block."""
        self.register(plugin, name)
        try:
            yield self
        finally:
            self.unregister(name)

    def _check(self) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin_name = self.pm.get_name(exc.plugin) if exc.plugin is not None else "?"
            package = self._packages.get(plugin_name, ("?", ""))[0]
            known = ", ".join(_HOOKS.values())
            raise PluginError(
                f"plugin {plugin_name!r} from package {package!r}: {exc}; known hooks: {known}"
            ) from exc

    # -- lookup ------------------------------------------------------------------------------
    def parts(self, kind: str) -> dict[str, Provided]:
        """All parts of one kind, keyed by name."""
        if kind not in _HOOKS:
            raise PluginError(f"unknown kind of part {kind!r}; kinds: {', '.join(KINDS)}")
        if self._cache is None:
            self._cache = {k: self._collect(k) for k in _HOOKS}
        return self._cache[kind]

    def _collect(self, kind: str) -> dict[str, Provided]:
        found: dict[str, Provided] = {}
        caller = getattr(self.pm.hook, _HOOKS[kind])
        for impl in reversed(caller.get_hookimpls()):  # registration order
            package, version = self._packages.get(impl.plugin_name, ("?", ""))
            try:
                specs = list(impl.function() or ())
            except Exception as exc:
                _report(f"plugin {impl.plugin_name!r} (package {_named(package, version)}) failed "
                        f"in {_HOOKS[kind]}() and its {kind}s are skipped: {_reason(exc)}")
                continue
            for spec in specs:
                if not isinstance(spec, SPEC_TYPES[kind]):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r} from package {package!r}: {_HOOKS[kind]}() "
                        f"yielded {type(spec).__name__}, not a {SPEC_TYPES[kind].__name__}")
                if spec.name in found:
                    other = found[spec.name].package
                    raise PluginError(
                        f"{kind} {spec.name!r} is provided twice: by {other!r} and by {package!r}"
                    )
                found[spec.name] = Provided(kind, spec, package, version)
        return found

    def get(self, kind: str, name: str) -> Any:
        """The spec of one part; an unknown name lists what is available."""
        parts = self.parts(kind)
        if name not in parts:
            available = ", ".join(sorted(parts)) or "(none installed)"
            raise PluginError(f"unknown {kind} {name!r}; available: {available}")
        return parts[name].spec

    def all_parts(self) -> list[Provided]:
        """Every part of every kind, for listing."""
        return [p for kind in _HOOKS for p in self.parts(kind).values()]


def _report(line: str) -> None:
    """One line on stderr: a user cannot act on a warning's source path, and every command
    repeats it."""
    print(f"astroclr: {' '.join(line.split())}", file=sys.stderr)


def _named(package: str, version: str) -> str:
    return f"{package!r} {version}".strip()


def _reason(exc: BaseException) -> str:
    """What went wrong and, when the plugin used a path of 0.1.0 that is gone, what to use."""
    from astroclr.moved import new_home

    # an ImportError ends with the module's file, "(/site-packages/...py)": noise in one line
    reason = re.sub(r" \([^()]*\.py\)$", "", f"{type(exc).__name__}: {exc}")
    if not isinstance(exc, ImportError) or not exc.name:
        return reason
    wanted = re.match(r"cannot import name '(\w+)'", str(exc))
    old = f"{exc.name}.{wanted.group(1)}" if wanted else exc.name
    hint = new_home(old) or new_home(exc.name)
    return f"{reason} ({old}: {hint}; see astroclr's CHANGELOG.md)" if hint else reason


def _distribution(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("?", "")
    return (dist.metadata["Name"], dist.version)


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def reset_registry() -> None:
    """Forget the loaded plugins (tests; after installing a plugin at run time)."""
    global _registry
    _registry = None
