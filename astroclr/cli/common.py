"""What every command shares: the Typer app, common options, one-line errors."""

from __future__ import annotations

import functools
from typing import Any, Callable

import typer

app = typer.Typer(
    help="Self-supervised (SimCLR) representations of galaxy images, and an honest measure of "
         "how good they are.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
augment_app = typer.Typer(help="Inspect the augmentation pipeline.", no_args_is_help=True)
app.add_typer(augment_app, name="augment")

SetOpt = typer.Option(None, "--set", "-s", metavar="KEY=VALUE",
                      help="Set any config key, e.g. --set augment.psf.p=0.3 (repeatable).")
ConfigOpt = typer.Option(None, "--config", "-c", help="A TOML config file.", exists=False)
PresetOpt = typer.Option(None, "--preset", "-p", help="A shipped configuration: default, long, gpu "
                         "(see astroclr config --presets).")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")
# a run directory's alternatives: a model package (the same argument) or an installed model
ModelOpt = typer.Option(None, "--model", "-m", help="An installed model (astroclr models) "
                        "instead of a run directory or package.")
# Lightning's devices, for the commands that train or infer (run, embed, predict)
AcceleratorOpt = typer.Option(None, help="Lightning accelerator: auto, cpu, gpu.")
DevicesOpt = typer.Option(None, help="Lightning devices: a count, '0,1', or auto.")
StrategyOpt = typer.Option(None, help="Lightning strategy: auto, ddp, ...")
NodesOpt = typer.Option(None, "--num-nodes", help="Nodes of a distributed job.")


def err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report user errors as one line and exit 2, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from astroclr.plugin.specs import AstroclrError

        try:
            return fn(*args, **kwargs)
        except AstroclrError as exc:
            err(str(exc))
            # 2 for a user error; an interrupted run says its own (130 for SIGINT, 143 for SIGTERM)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except KeyboardInterrupt:
            err("interrupted; a run can be continued with astroclr run --resume RUN_DIR")
            raise typer.Exit(130) from None

    return wrapper


