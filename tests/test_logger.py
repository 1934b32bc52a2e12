"""train.logger: the CSV log always, TensorBoard or MLflow besides when their extra is installed."""

from __future__ import annotations

import sys

import pytest

import astroclr
from astroclr.config import assemble_config, resolve
from astroclr.plugin.specs import AstroclrError, ConfigError
from astroclr.runs.rundir import RunDir
from astroclr.train.devices import check_logger
from astroclr.train.trainer import training_loggers


def _train(registry, **overrides):
    return resolve(assemble_config(None, [], **overrides), registry).train


def test_the_csv_log_is_the_default_and_the_only_logger(registry, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    train = _train(registry)
    assert train.logger == "csv"
    loggers = training_loggers(train, RunDir(tmp_path))
    assert [type(x) for x in loggers] == [CSVLogger]


@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
def test_a_logger_whose_extra_is_missing_is_a_one_line_error(registry, monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # as if not installed, whatever this venv has
    with pytest.raises(AstroclrError) as err:
        check_logger(_train(registry, logger=name))
    message = str(err.value)
    assert "\n" not in message
    assert f"train.logger = {name!r} needs the {name} package" in message
    assert f"pip install 'astroclr[{name}]'" in message


def test_a_run_with_a_missing_logger_fails_before_writing_anything(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(AstroclrError, match="needs the mlflow package"):
        astroclr.run(out=tmp_path / "run", backbone="smallcnn", logger="mlflow", max_steps=1,
                     epochs=1, progress=False, evaluators=[], sets=("dataset.limit=40",))
    assert not (tmp_path / "run").exists()


def test_an_unknown_logger_is_refused_by_the_config(registry):
    with pytest.raises(ConfigError, match="train.logger"):
        _train(registry, logger="wandb")
