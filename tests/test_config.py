"""Configuration: every bad key or value is rejected with a message that names it."""

from __future__ import annotations

import pytest

from astroclr import config as C
from astroclr.config import assemble_config
from astroclr.plugin.registry import PluginError
from astroclr.plugin.specs import ConfigError


def resolve(registry, *sets, **kw):
    return C.resolve(assemble_config(None, sets, **kw), registry)


def test_defaults_resolve_with_plugin_defaults(registry):
    cfg = resolve(registry)
    assert cfg.run.backbone == "resnet18"
    assert cfg.train.representation_dim == 64
    assert cfg.backbone == {"stem": "imagenet"}
    assert cfg.dataset["bands"] == ["g", "r", "i"]


def test_set_assignment_reaches_nested_tables(registry):
    cfg = resolve(registry, "method.temperature=0.5", "backbone.stem=conv3s1", "run.eval_seeds=[4]")
    assert cfg.method == {"temperature": 0.5}
    assert cfg.backbone["stem"] == "conv3s1"
    assert cfg.run.eval_seeds == (4,)


@pytest.mark.parametrize("assignment, message", [
    ("train.epoch=3", r"train: unknown parameter 'epoch'; known parameters: .*epochs"),
    ("train.epochs=0", r"train.epochs: 0 is below the minimum 1"),
    ("train.temperature=hot", r"train.temperature: expected float, got 'hot'"),
    ("method.temperature=hot", r"method.temperature: expected float, got 'hot'"),
    ("method.momentum=0.9", r"method: unknown parameter 'momentum'; known parameters: temperature"),
    ("backbone.stem=huge", r"backbone.stem: 'huge' is not one of: imagenet, conv3s2, conv3s1"),
    ("training.epochs=3", r"unknown config table \[training\]"),
    ("train.time_budget=soon", r"train.time_budget: 'soon' is not a duration"),
])
def test_bad_values_are_named(registry, assignment, message):
    with pytest.raises(ConfigError, match=message):
        resolve(registry, assignment)


def test_unknown_plugin_lists_available(registry):
    with pytest.raises(PluginError, match=r"unknown dataset 'sdsss'; available: .*sdss"):
        resolve(registry, dataset="sdsss")


def test_unknown_method_lists_available(registry):
    with pytest.raises(PluginError, match=r"unknown method 'simclear'; available: .*byol.*simclr"):
        resolve(registry, method="simclear")


def test_method_params_are_the_chosen_methods_with_defaults(registry):
    cfg = resolve(registry, "method.memory_bank=512", method="moco")
    assert cfg.train.method == "moco"
    assert cfg.method["memory_bank"] == 512 and cfg.method["temperature"] == 0.2
    with pytest.raises(ConfigError, match=r"method.memory_bank: 0 is below the minimum 1"):
        resolve(registry, "method.memory_bank=0", method="moco")


def test_old_config_files_train_temperature_sets_the_methods_temperature(registry):
    """Config files written before methods were plugins have SimCLR's temperature in [train]."""
    assert resolve(registry, "train.temperature=0.3").method == {"temperature": 0.3}
    assert resolve(registry, "train.temperature=0.3", method="moco").method["temperature"] == 0.3
    # [method] wins over the old key
    assert resolve(registry, "train.temperature=0.3", "method.temperature=0.4").method == \
        {"temperature": 0.4}
    with pytest.raises(ConfigError, match=r"train.temperature: method 'byol' has no temperature"):
        resolve(registry, "train.temperature=0.3", method="byol")


def test_unknown_augmentation_lists_available(registry):
    with pytest.raises(PluginError, match=r"unknown augmentation 'blurr'; available: .*psf"):
        resolve(registry, "augment.pipeline=['blurr']")


def test_unknown_shortcut_is_rejected():
    with pytest.raises(ConfigError, match="unknown option 'epoch'"):
        assemble_config(None, (), epoch=2)


def test_config_file_round_trips(registry, tmp_path):
    cfg = resolve(registry, "train.lr=0.01")
    path = tmp_path / "run.toml"
    path.write_text(C.to_toml(cfg))
    assert C.resolve(C.read_toml(path), registry) == cfg


def test_config_file_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train\nepochs = 2\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        C.read_toml(path)


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1.5h", 5400), ("45", 45)])
def test_durations(text, seconds):
    assert C.parse_duration(text) == seconds


@pytest.mark.parametrize("name", ["quick", "long", "gpu"])
def test_shipped_presets_resolve(registry, name):
    cfg = C.resolve(assemble_config(None, (), name), registry)
    assert cfg.train.time_budget or cfg.train.epochs


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError, match=r"unknown preset 'fast'; available: .*long"):
        assemble_config(None, (), "fast")


def test_epochs_option_switches_a_time_budget_off(registry):
    cfg = C.resolve(assemble_config(None, (), "long", epochs=3), registry)
    assert cfg.train.epochs == 3 and cfg.train.time_budget == ""


def test_the_core_tables_param_records_are_derived_from_the_models():
    """One declaration per key: RUN_PARAMS/TRAIN_PARAMS are read off the pydantic models."""
    from astroclr.resolved import RunOptions, TrainOptions

    assert [p.name for p in C.RUN_PARAMS] == list(RunOptions.model_fields)
    assert [p.name for p in C.TRAIN_PARAMS] == list(TrainOptions.model_fields)
    epochs = next(p for p in C.TRAIN_PARAMS if p.name == "epochs")
    assert (epochs.default, epochs.low) == (TrainOptions.model_fields["epochs"].default, 1)


def test_derived_facts_are_worked_out_once(registry):
    cfg = resolve(registry, "train.time_budget=2m", "train.accelerator=cpu", "train.devices=2")
    assert cfg.train.budget_seconds == 120.0
    assert cfg.train.device == "cpu" and not cfg.train.on_gpu
    assert cfg.train.lightning_precision == "32-true"
    assert cfg.train.distributed and cfg.train.device_spec == 2


def test_resolved_config_is_frozen(registry):
    from pydantic import ValidationError

    cfg = resolve(registry)
    with pytest.raises(ValidationError, match="frozen"):
        cfg.train.lr = 1.0  # type: ignore[misc]
