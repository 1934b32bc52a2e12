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

from astroclr.plugin.params import model_params
from astroclr.plugin.specs import ConfigError, validate_params
from astroclr.resolved import KEEP, Config, RunOptions, TrainOptions, parse_duration

__all__ = ["RUN_PARAMS", "TRAIN_PARAMS", "DEFAULT_AUGMENT", "SHORTCUTS", "KEPT_ON_RESUME",
           "defaults", "presets", "read_preset", "read_toml", "merge", "parse_set", "resolve",
           "assemble_config", "parse_duration", "to_toml"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from astroclr.plugin.registry import Registry

#: the core tables' keys as Param records (for the docs and code written against them),
#: derived from the pydantic models in astroclr.resolved, where each key is declared
RUN_PARAMS = model_params(RunOptions)
TRAIN_PARAMS = model_params(TrainOptions)

# Order follows the physics: framing and orientation, then seeing, then the band gains, then
# noise on the final image (so gains do not rescale it), then masking.
DEFAULT_AUGMENT = ["crop_resize", "rotate_flip", "psf", "band_jitter", "noise", "cutout"]

_TABLES = ("run", "train", "dataset", "backbone", "method", "augment", "evaluate")


def defaults() -> dict[str, Any]:
    """The default configuration (core tables only; plugin defaults are filled by ``resolve``)."""
    return {
        "run": RunOptions.defaults(),
        "train": TrainOptions.defaults(),
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
    run, train = RunOptions.check(cfg["run"]), TrainOptions.check(train)
    out: dict[str, Any] = {"run": run, "train": train}
    dataset = registry.get("dataset", run.dataset)
    out["dataset"] = validate_params(dataset.all_params, cfg["dataset"], "dataset")
    backbone = registry.get("backbone", run.backbone)
    out["backbone"] = validate_params(backbone.params, cfg["backbone"], "backbone")
    out["method"] = _resolve_method(registry, train.method, cfg["method"], legacy_temperature)
    names, aug_params = resolve_augment_config(registry, _with_suggestions(cfg["augment"], dataset))
    out["augment"] = {"pipeline": names, **aug_params}
    out["evaluate"] = resolve_evaluator_params(registry, list(run.evaluators), cfg["evaluate"])
    return Config.from_tables(out)


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
SHORTCUTS = {k: "run" for k in RunOptions.model_fields} | {k: "train" for k in TrainOptions.model_fields}

#: (table, key) of the core keys a resumed run must keep (declared ``KEEP`` in the models)
KEPT_ON_RESUME = tuple((model.where, name) for model in (RunOptions, TrainOptions)
                       for name, f in model.model_fields.items() if f.json_schema_extra == KEEP)


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
