"""What every command shares: the Typer app, common options, one-line errors."""

from __future__ import annotations

import contextlib
import functools
import re
import signal
import threading
from typing import Any, Callable, Iterator

import typer

from astroclr.cli.schema_help import DEFAULTS, HELP

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


def rich_escape(text: str) -> str:
    """``text`` with what Rich would read as markup (``[method]``) escaped; Typer renders help
    through Rich, which drops such a tag silently (rich.markup.escape, without importing it)."""
    return re.sub(r"(\\*)(\[[a-z#/@][^[]*?])", lambda m: m.group(1) * 2 + "\\" + m.group(2), text)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))  # as --evaluators takes it
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else '""'


def key_help(key: str, extra: str = "", with_default: bool = True) -> str:
    """The help of an option that sets the schema key ``key`` (``train.epochs``): the key's
    description from the schema, ``extra`` (what only the command line adds), the key's name,
    and its default unless the option shows a default of its own."""
    text = HELP[key]
    # a description that begins with a value (finetune, pretrained, auto) keeps its spelling
    if not text.startswith(_shown(DEFAULTS[key])):
        text = text[:1].upper() + text[1:]
    text += f"; {extra}" if extra else ""
    text += "" if text.endswith(".") else "."  # "auto, ddp, ..." ends a sentence as it is
    text += f" Sets {key} (default {_shown(DEFAULTS[key])})." if with_default else f" Sets {key}."
    return rich_escape(text)


def schema_option(key: str, *names: str, extra: str = "", **kw: Any) -> Any:
    """A Typer option setting the schema key ``key``, its help from the schema. The option's
    default is None (the configuration's applies) unless given as ``default``."""
    default = kw.pop("default", None)
    return typer.Option(default, *names,
                        help=key_help(key, extra, with_default=default is None), **kw)


# Lightning's devices, for the commands that train or infer (run, embed, predict)
AcceleratorOpt = schema_option("train.accelerator", "--accelerator")
DevicesOpt = schema_option("train.devices", "--devices")
StrategyOpt = schema_option("train.strategy", "--strategy")
NodesOpt = schema_option("train.num_nodes", "--num-nodes")


def err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


#: the arguments of this process's command line (set by ``main``), to say how to continue it
ARGV: list[str] | None = None


class Signalled(BaseException):
    """Raised by the signal handler of a long command: a BaseException, so that no
    ``except Exception`` on the way (Lightning's, ours) turns it into another error."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)


def _continue_hint() -> str:
    import shlex

    if ARGV is None:
        return "run the same command again to continue"
    return "continue with: astroclr " + shlex.join(ARGV)


@contextlib.contextmanager
def _signals_raise(enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`Signalled` in the main thread for the block. Without this,
    Lightning turns a Ctrl-C inside ``predict``/``fit`` into ``exit(1)`` with no word."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        raise Signalled(signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def friendly(fn: Callable[..., Any] | None = None, *,
             interruptible: bool = False) -> Callable[..., Any]:
    """Report user errors as one line and exit 2, instead of a traceback.

    ``interruptible``: a long command that SIGINT/SIGTERM stop with exit 130/143 and a line
    saying how to continue (the same command: embed and predict resume their parts)."""
    if fn is None:
        return functools.partial(friendly, interruptible=interruptible)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from astroclr.plugin.specs import AstroclrError

        try:
            with _signals_raise(interruptible):
                return fn(*args, **kwargs)
        except AstroclrError as exc:
            err(str(exc))
            # 2 for a user error; an interrupted run says its own (130 for SIGINT, 143 for SIGTERM)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except Signalled as exc:
            err(f"stopped by {signal.Signals(exc.signum).name}; {_continue_hint()}")
            raise typer.Exit(128 + exc.signum) from None
        except KeyboardInterrupt:
            err("interrupted; a run can be continued with astroclr run --resume RUN_DIR")
            raise typer.Exit(130) from None

    return wrapper


def usage_error_line(exc: Any) -> str:
    """A command-line usage error (Typer/Click) as one line: the command, what is wrong, and
    where the help is, instead of Typer's boxed panel."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "astroclr"
    message = " ".join(str(exc.format_message()).split())
    return f"{path}: {message} (see {path} --help)"
