"""Run configuration: defaults, TOML files, ``--set`` overrides, and validation.

A run config has seven tables::

    [run]       dataset, backbone, seed, evaluators, ...
    [train]     method, epochs, batch_size, lr, representation_dim, ...
    [dataset]   parameters of the chosen dataset plugin
    [backbone]  parameters of the chosen backbone plugin
    [method]    parameters of the chosen self-supervised method (train.method)
    [augment]   pipeline = [names...], and one sub-table of parameters per name
    [evaluate]  one sub-table of parameters per evaluator

Everything is validated (unknown keys, types, ranges, plugin names) before any data is read.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from astroclr.plugin.specs import ConfigError, Param, validate_params
from astroclr.resolved import Config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from astroclr.plugin.registry import Registry

RUN_PARAMS = (
    Param("dataset", str, "sdss", "dataset plugin"),
    Param("backbone", str, "resnet18", "backbone plugin"),
    Param("seed", int, 0, "seed for weights, data order, augmentations and splits", low=0),
    Param("evaluators", list, ["probe", "pca", "untrained", "colours", "knn", "umap", "similar",
                               "retrieval", "anomaly", "label_efficiency"],
          "evaluator plugins to run after training, in order", item_type=str),
    Param("label_column", str, "label", "catalogue column with integer labels (-1 unlabelled)"),
    # Five splits: with three, the spread at N = 100 let a lucky draw of splits rank the
    # baselines differently from ten splits (docs/quality.md).
    Param("eval_seeds", list, [0, 1, 2, 3, 4], "one labelled train/test split per seed",
          item_type=int, low=0),
    Param("train_sizes", list, [100, 300, 1000, 3000, 10000],
          "numbers of labelled galaxies for the label-efficiency curve", item_type=int, low=1),
    Param("test_fraction", float, 0.25, "fraction of labelled galaxies held out for testing",
          low=0.01, high=0.99),
)

TRAIN_PARAMS = (
    Param("method", str, "simclr", "self-supervised method plugin: simclr, moco, byol, vicreg, "
          "barlowtwins, dino, ... (astroclr plugins); its parameters go in [method]"),
    Param("epochs", int, 8, "passes over the dataset (see also time_budget)", low=1),
    Param("max_steps", int, -1, "stop after this many optimiser steps (-1: no limit)", low=-1),
    Param("time_budget", str, "6m", "wall-clock budget for training, e.g. '8m', '1h', '90s'; "
          "the schedule is fitted to it (empty: train for `epochs`)"),
    Param("batch_size", int, 256, "images per batch (each gives two views)", low=2),
    Param("lr", float, 2e-3, "peak learning rate (AdamW)", low=0.0),
    Param("weight_decay", float, 1e-4, "AdamW weight decay", low=0.0),
    Param("warmup_fraction", float, 0.05, "fraction of steps with linear warm-up", low=0.0,
          high=0.5),
    Param("representation_dim", int, 64, "size of the representation", low=1),
    Param("projection_hidden_dim", int, 512, "hidden width of the method's projection head "
          "(and predictor)", low=1),
    Param("projection_dim", int, 128, "output size of the method's projection head", low=1),
    Param("accelerator", str, "auto", "Lightning accelerator: auto, cpu, gpu, cuda, mps"),
    Param("devices", str, "1", "Lightning devices: a count, a list such as '0,1', or 'auto'"),
    Param("num_nodes", int, 1, "number of nodes for distributed training", low=1),
    Param("strategy", str, "auto", "Lightning strategy: auto, ddp, ddp_spawn, fsdp, ..."),
    Param("precision", str, "auto", "auto (bf16-mixed on CUDA, 32-true on CPU) or a Lightning "
          "precision"),
    Param("checkpoint_every_n_steps", int, 200, "also checkpoint every N steps (0: epochs only)",
          low=0),
    Param("threads", int, 0, "CPU threads for torch (0: leave torch's default)", low=0),
    Param("embed_batch_size", int, 512, "images per batch when embedding", low=1),
    Param("logger", str, "csv", "also log training to tensorboard or mlflow (extras: pip install "
          "'astroclr[tensorboard]'); logs/metrics.csv is always written",
          choices=("csv", "tensorboard", "mlflow")),
)

# Order follows the physics: framing and orientation, then seeing, then the band gains, then
# noise on the final image (so gains do not rescale it), then masking.
DEFAULT_AUGMENT = ["crop_resize", "rotate_flip", "psf", "band_jitter", "noise", "cutout"]

_TABLES = ("run", "train", "dataset", "backbone", "method", "augment", "evaluate")


def defaults() -> dict[str, Any]:
    """The default configuration (core tables only; plugin defaults are filled by ``resolve``)."""
    return {
        "run": {p.name: copy.deepcopy(p.default) for p in RUN_PARAMS},
        "train": {p.name: copy.deepcopy(p.default) for p in TRAIN_PARAMS},
        "dataset": {},
        "backbone": {},
        "method": {},
        "augment": {"pipeline": list(DEFAULT_AUGMENT)},
        "evaluate": {},
    }


PRESETS_DIR = Path(__file__).with_name("presets")


def presets() -> dict[str, Path]:
    """Named configurations shipped with astroclr (``--preset NAME``)."""
    return {p.stem: p for p in sorted(PRESETS_DIR.glob("*.toml"))}


def read_preset(name: str) -> dict[str, Any]:
    """A preset's tables; an unknown name lists the available ones."""
    known = presets()
    if name not in known:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(known) or '(none)'}")
    return read_toml(known[name])


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file; a syntax error names the file and line."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base`` (tables merge, values replace)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(assignment: str) -> dict[str, Any]:
    """Turn ``'augment.psf.p=0.3'`` into ``{'augment': {'psf': {'p': 0.3}}}``.

    The value is read as a TOML value (numbers, booleans, ``[1, 2]`` lists, quoted strings);
    anything that is not valid TOML is taken as a plain string.
    """
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.epochs=4")
    key, raw = assignment.split("=", 1)
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", key.strip()):
        raise ConfigError(f"--set {assignment!r}: bad key {key!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    out: dict[str, Any] = {parts[-1]: value}
    for p in reversed(parts[:-1]):
        out = {p: out}
    return out


def resolve(raw: Mapping[str, Any] | Config, registry: "Registry") -> Config:
    """Validate a merged configuration against the core and the chosen plugins.

    Returns the fully resolved, frozen configuration (every default filled in, derived facts
    such as the time budget in seconds worked out). Raises ConfigError or PluginError, each
    naming the offending key or plugin, before anything is loaded.
    """
    if isinstance(raw, Config):
        raw = raw.tables()
    from astroclr.data.augment import resolve_augment_config
    from astroclr.evaluate.context import resolve_evaluator_params

    unknown = sorted(set(raw) - set(_TABLES))
    if unknown:
        raise ConfigError(f"unknown config table [{unknown[0]}]; tables: {', '.join(_TABLES)}")
    for table in _TABLES:
        if table in raw and not isinstance(raw[table], Mapping):
            raise ConfigError(f"config key {table!r} must be a table")
    cfg = merge(defaults(), raw)
    train = dict(cfg["train"])
    legacy_temperature = train.pop("temperature", None)
    out: dict[str, Any] = {
        "run": validate_params(RUN_PARAMS, cfg["run"], "run"),
        "train": validate_params(TRAIN_PARAMS, train, "train"),
    }
    budget = parse_duration(out["train"]["time_budget"])
    dataset = registry.get("dataset", out["run"]["dataset"])
    out["dataset"] = validate_params(dataset.all_params, cfg["dataset"], "dataset")
    backbone = registry.get("backbone", out["run"]["backbone"])
    out["backbone"] = validate_params(backbone.params, cfg["backbone"], "backbone")
    out["method"] = _resolve_method(registry, out["train"]["method"], cfg["method"],
                                    legacy_temperature)
    names, aug_params = resolve_augment_config(registry, _with_suggestions(cfg["augment"], dataset))
    out["augment"] = {"pipeline": names, **aug_params}
    out["evaluate"] = resolve_evaluator_params(registry, out["run"]["evaluators"], cfg["evaluate"])
    if not out["run"]["eval_seeds"]:
        raise ConfigError("run.eval_seeds: give at least one seed")
    return Config.from_tables(out, budget)


def _with_suggestions(augment: Mapping[str, Any], dataset: Any) -> dict[str, Any]:
    """The ``[augment]`` table with the dataset's suggested parameters under the user's own
    (a PSF range in arcsec that suits its pixel scale, say), for augmentations in the pipeline."""
    out = copy.deepcopy(dict(augment))
    for name in out.get("pipeline", []):
        suggested = dataset.suggested.get(name)
        if suggested and isinstance(out.get(name, {}), Mapping):
            out[name] = merge(dict(suggested), out.get(name, {}))
    return out


def _resolve_method(registry: "Registry", name: str, given: Mapping[str, Any],
                    legacy_temperature: Any) -> dict[str, Any]:
    """The ``[method]`` table validated against the chosen method's declared parameters.

    ``train.temperature`` (before methods were plugins, SimCLR's NT-Xent temperature) is still
    read from older config files: it sets ``method.temperature`` of a method that has one,
    unless ``[method]`` gives it.
    """
    spec = registry.get("method", name)
    given = dict(given)
    if legacy_temperature is not None:
        declared = {p.name: p for p in spec.params}
        if "temperature" not in declared:
            raise ConfigError(f"train.temperature: method {name!r} has no temperature (it is a "
                              f"[method] parameter of the methods that have one, e.g. simclr, moco)")
        given.setdefault("temperature", declared["temperature"].validate(legacy_temperature, "train"))
    return validate_params(spec.params, given, "method")


#: keyword arguments of run() that set a core option, e.g. run(epochs=2, batch_size=64)
SHORTCUTS = {p.name: "run" for p in RUN_PARAMS} | {p.name: "train" for p in TRAIN_PARAMS}


def assemble_config(config: str | Path | Mapping[str, Any] | None = None,
                    sets: Sequence[str] = (), preset: str | None = None,
                    **overrides: Any) -> dict[str, Any]:
    """Defaults ← preset ← config file or mapping ← ``--set`` assignments ← keyword shortcuts.

    Giving ``epochs`` (and no ``time_budget``) as a shortcut switches the time budget off, so
    ``--epochs 3`` means three epochs whatever the preset's budget.
    """
    raw: dict[str, Any] = read_preset(preset) if preset else {}
    if isinstance(config, (str, Path)):
        raw = merge(raw, read_toml(config))
    elif isinstance(config, Config):
        raw = merge(raw, config.tables())
    elif config is not None:
        raw = merge(raw, config)
    if overrides.get("epochs") is not None and overrides.get("time_budget") is None:
        overrides = dict(overrides, time_budget="")
    for assignment in sets:
        raw = merge(raw, parse_set(assignment))
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in SHORTCUTS:
            raise ConfigError(f"unknown option {key!r}; options: {', '.join(sorted(SHORTCUTS))}")
        raw = merge(raw, {SHORTCUTS[key]: {key: value}})
    return raw


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?\s*$")


def parse_duration(text: str) -> float | None:
    """'10m' → 600.0 seconds; '' → None. Units: s, m, h (default s)."""
    if not text:
        return None
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"train.time_budget: {text!r} is not a duration such as '90s', '10m', '1h'")
    value = float(match.group(1))
    unit = (match.group(2) or "s")[0]
    seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
    if seconds <= 0:
        raise ConfigError(f"train.time_budget: {text!r} must be positive")
    return seconds


def to_toml(config: Mapping[str, Any] | Config) -> str:
    """Serialise a resolved configuration (None values, which TOML cannot hold, left out)."""
    import tomli_w

    from astroclr.files import to_jsonable

    tables = config.tables() if isinstance(config, Config) else config
    return tomli_w.dumps(_drop_none(to_jsonable(tables)))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
