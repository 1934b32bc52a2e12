"""One schema: each configuration key declared once (pydantic models, or a plugin's Param
records validated through the same models); validation, defaults and ``astroclr config`` read
that declaration, and a bad value is one line naming the key."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from astroclr import config as C
from astroclr.plugin.specs import ConfigError
from astroclr.resolved import TrainOptions


def test_a_wrong_type_in_a_config_file_is_one_line_naming_the_key(registry, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nepochs = "many"\n')
    with pytest.raises(ConfigError) as err:
        C.resolve(C.assemble_config(path), registry)
    assert str(err.value) == "train.epochs: expected int, got 'many'"


def test_a_boolean_is_not_read_as_a_number(registry):
    with pytest.raises(ConfigError, match=r"train.batch_size: expected int, got True"):
        C.resolve(C.assemble_config(None, ["train.batch_size=true"]), registry)


def test_astroclr_config_prints_the_declared_default():
    res = subprocess.run([sys.executable, "-m", "astroclr.cli", "config"], capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, COLUMNS="200"))
    assert res.returncode == 0, res.stderr
    default = TrainOptions.model_fields["embed_batch_size"].default
    assert f"\nembed_batch_size = {default}\n" in res.stdout


def test_a_plugin_parameter_out_of_the_recipes_range_is_refused_before_work(registry):
    """finetune's parameters are the recipe's fields: lr = 0, which the recipe refuses, is
    refused when the configuration is resolved, not after earlier evaluators have run."""
    with pytest.raises(ConfigError, match=r"evaluate.finetune.lr: 0.0 is below the minimum"):
        C.resolve(C.assemble_config(None, ["run.evaluators=['finetune']",
                                           "evaluate.finetune.lr=0.0"]), registry)


def test_a_recipe_set_of_the_wrong_type_names_the_key():
    from astroclr.classify.apply import split_recipe_sets

    with pytest.raises(ConfigError, match=r"^recipe.freeze_bn: expected true or false, got 3$"):
        split_recipe_sets(["recipe.freeze_bn=3"])


def test_finetunes_mode_option_is_named_in_its_error():
    from astroclr.classify.recipe import Recipe

    with pytest.raises(ConfigError, match=r"^--mode: 'magic' is not one of: finetune, probe$"):
        Recipe.check({"mode": "magic"}, labels={"mode": "--mode"})


def test_each_builtin_evaluators_keyword_defaults_are_its_declared_defaults(registry):
    """One source per default: a Python caller of evaluate() gets what a run gets (the
    untrained baseline's probe models were ("linear", "mlp") in one and ["linear"] in the
    other)."""
    checked = 0
    for name, part in registry.parts("evaluator").items():
        if part.package != "astroclr":
            continue
        spec = part.spec
        signature = inspect.signature(spec.evaluate.resolve())
        for p in spec.params:
            given = signature.parameters.get(p.name)
            if given is None or given.default is inspect.Parameter.empty:
                continue
            default = list(given.default) if isinstance(given.default, tuple) else given.default
            assert default == p.default, f"evaluator {name!r}: {p.name}"
            checked += 1
    assert checked > 10


def test_the_keys_a_resumed_run_keeps_are_declared_in_the_models():
    assert ("train", "batch_size") in C.KEPT_ON_RESUME and ("run", "seed") in C.KEPT_ON_RESUME
    assert ("train", "lr") not in C.KEPT_ON_RESUME  # a resumed run may change its schedule


def test_a_datasets_preprocessing_parameters_are_the_preprocessing_models_fields(registry):
    from astroclr.plugin.preprocessing import PreprocessingOptions

    inherited = {p.name: p for p in registry.get("dataset", "sdss").all_params}
    for name, field in PreprocessingOptions.model_fields.items():
        assert inherited[name].help == field.description
    assert inherited["bin"].high == 16


def test_preprocessing_out_of_range_is_one_line_naming_the_field():
    from astroclr.api import Preprocessing

    with pytest.raises(ConfigError, match=r"^preprocessing.bin: 0 is below the minimum 1$"):
        Preprocessing(bin=0)


def test_the_clis_copy_of_the_schemas_help_matches_the_models():
    """The command line shows each key's description without importing pydantic, from a
    generated copy; a field changed without regenerating it fails here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gen_schema_help", Path(__file__).resolve().parents[1] / "docs" / "gen_schema_help.py")
    gen_schema_help = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_schema_help)
    assert gen_schema_help.TARGET.read_text(encoding="utf-8") == gen_schema_help.render(), (
        "astroclr/cli/schema_help.py is out of date; run: python docs/gen_cli_reference.py")


@pytest.mark.parametrize("command, option, key", [
    ("run", "method", "train.method"), ("run", "epochs", "train.epochs"),
    ("run", "time_budget", "train.time_budget"), ("run", "batch_size", "train.batch_size"),
    ("run", "seed", "run.seed"), ("run", "evaluators", "run.evaluators"),
    ("run", "logger", "train.logger"), ("run", "dataset", "run.dataset"),
    ("run", "backbone", "run.backbone"), ("embed", "devices", "train.devices"),
    ("predict", "accelerator", "train.accelerator"), ("run", "strategy", "train.strategy"),
    ("run", "num_nodes", "train.num_nodes"), ("finetune", "mode", "recipe.mode"),
    ("finetune", "augment", "recipe.augment"), ("finetune", "init", "recipe.init"),
    ("finetune", "unlabelled", "recipe.unlabelled"),
])
def test_an_option_that_sets_a_schema_key_shows_the_keys_description(command, option, key):
    import typer

    from astroclr import cli
    from astroclr.classify.recipe import Recipe
    from astroclr.resolved import RunOptions

    cli.load_commands()
    click_command = typer.main.get_command(cli.app).commands[command]
    shown = next(p.help for p in click_command.params if p.name == option)
    table, name = key.split(".")
    model = {"run": RunOptions, "train": TrainOptions, "recipe": Recipe}[table]
    description = model.model_fields[name].description
    # the first letter may be capitalised, and brackets are escaped for Rich ("\[method]")
    assert description[1:] in shown.replace("\\[", "[")
    assert f"Sets {key}" in shown
