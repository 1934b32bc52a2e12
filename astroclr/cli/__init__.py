"""The ``astroclr`` command line: a thin layer over the Python API.

Heavy libraries (torch, Lightning, astropy, umap) are imported inside the commands, so
``astroclr --help`` answers instantly. Each module of this package adds one group of commands
to :data:`app`; plugins add theirs through the ``astroclr_commands`` hook.
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional

import typer

from astroclr.cli.common import app, err

#: the modules that add the core commands, in the order ``astroclr --help`` lists them
COMMAND_MODULES = ("train", "apply", "label", "explore", "share")


def load_commands() -> None:
    """Add the core commands to :data:`app` (idempotent)."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"astroclr.cli.{name}")


_plugin_commands_added = False


def _add_plugin_commands() -> None:
    """Sub-commands contributed by plugins (e.g. ``astroclr sdss download``), added once."""
    import warnings

    global _plugin_commands_added
    if _plugin_commands_added:
        return
    _plugin_commands_added = True

    from astroclr.plugin.registry import PluginError, get_registry

    try:
        parts = get_registry().parts("command")
    except PluginError as exc:
        err(str(exc))
        raise SystemExit(2) from None
    taken = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for name, part in parts.items():
        if name in taken:
            warnings.warn(f"astroclr: plugin command {name!r} from {part.package!r} clashes with "
                          f"a built-in command and is skipped", RuntimeWarning, stacklevel=1)
            continue
        try:
            sub = part.spec.make_app()
        except Exception as exc:
            warnings.warn(f"astroclr: plugin command {name!r} from {part.package!r} failed: {exc}",
                          RuntimeWarning, stacklevel=1)
            continue
        app.add_typer(sub, name=name, help=part.spec.description)




def main(argv: Optional[List[str]] = None) -> Any:
    """Entry point of the ``astroclr`` script."""
    from astroclr.cli import common

    load_commands()
    _add_plugin_commands()
    args = list(argv if argv is not None else sys.argv[1:])
    common.ARGV = args
    usage_error, no_args = _usage_errors()
    try:
        rv = app(args=args, prog_name="astroclr", standalone_mode=False)
    except no_args as exc:
        print(exc.format_message(), file=sys.stderr)
        raise SystemExit(2) from None
    except usage_error as exc:  # -k 0, a missing option: one line, exit 2
        err(common.usage_error_line(exc))
        raise SystemExit(2) from None
    except typer.Abort:
        err("interrupted")
        raise SystemExit(130) from None
    if isinstance(rv, int) and not isinstance(rv, bool) and rv:  # an Exit's code
        raise SystemExit(rv)
    return rv


def _usage_errors() -> tuple[type, type]:
    """Click's UsageError and NoArgsIsHelpError (Typer ships its own Click since 0.2x)."""
    try:
        from typer._click import exceptions
    except ImportError:  # an older Typer on the real Click
        from click import exceptions
    return exceptions.UsageError, exceptions.NoArgsIsHelpError
