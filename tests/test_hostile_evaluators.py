"""Hostile parameters of the discovery evaluators (``anomaly``, ``retrieval``, ``finetune``)
through ``astroclr evaluate`` (see hostile_support.py for what every case checks). Every
parameter is checked when the configuration is resolved, before any evaluator runs, so an
earlier evaluator's figure is never rewritten by a command that then fails."""

from __future__ import annotations

import pytest
from hostile_support import Case, check, python, snapshot

CASES = [
    Case("anomaly seed -1", ("evaluate", "{run}", "-e", "anomaly", "--set",
                             "evaluate.anomaly.seed=-1", "-q"), 2,
         ("evaluate.anomaly.seed", "minimum")),
    Case("anomaly seed 2**40", ("evaluate", "{run}", "-e", "anomaly", "--set",
                                f"evaluate.anomaly.seed={2**40}", "-q"), 2,
         ("evaluate.anomaly.seed", "maximum")),
    Case("anomaly k 0", ("evaluate", "{run}", "-e", "anomaly", "--set", "evaluate.anomaly.k=0",
                         "-q"), 2, ("evaluate.anomaly.k",)),
    Case("retrieval k=[] after a figure-writing evaluator",
         ("evaluate", "{run}", "-e", "similar", "-e", "retrieval", "--set",
          "evaluate.retrieval.k=[]", "-q"), 2, ("evaluate.retrieval.k", "at least 1")),
    Case("retrieval k=[0]", ("evaluate", "{run}", "-e", "retrieval", "--set",
                             "evaluate.retrieval.k=[0]", "-q"), 2, ("evaluate.retrieval.k",)),
    Case("finetune lr nan", ("evaluate", "{run}", "-e", "finetune", "--set",
                             "evaluate.finetune.lr=nan", "-q"), 2,
         ("evaluate.finetune.lr", "not a finite number")),
    Case("finetune weight_decay -1", ("evaluate", "{run}", "-e", "finetune", "--set",
                                      "evaluate.finetune.weight_decay=-1.0", "-q"), 2,
         ("evaluate.finetune.weight_decay",)),
    Case("another evaluator's table", ("evaluate", "{run}", "-e", "anomaly", "--set",
                                       "evaluate.retrieval.k=[1]", "-q"), 2,
         ("'retrieval'", "not among")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_evaluator_parameters(hostile_world, case):
    check(hostile_world, case)


def test_the_evaluators_refuse_bad_parameters_called_directly(sample_galaxies, tmp_path):
    """The same ranges at the top of evaluate(), for Python callers that skip the config."""
    import numpy as np

    from astroclr.api import AstroclrError
    from astroclr.evaluate.context import EvalContext
    from astroclr_evaluators import anomaly, retrieval

    reps = np.random.default_rng(0).normal(size=(len(sample_galaxies), 8)).astype(np.float32)
    context = EvalContext(galaxies=sample_galaxies, representations=reps,
                          figures_dir=tmp_path / "figures")
    with pytest.raises(AstroclrError, match="k must be a non-empty list"):
        retrieval.evaluate(context, k=[])
    with pytest.raises(AstroclrError, match="seed must be an integer >= 0"):
        anomaly.evaluate(context, seed=-1)
    assert not (tmp_path / "figures").exists()


def test_a_signal_during_evaluation_says_how_to_continue(hostile_world):
    before = snapshot(hostile_world.run)
    r = python(
        "import os, signal, time\n"
        "import astroclr.evaluate.context as context\n"
        "def stopped(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n"
        "context.run_evaluators = stopped\n"
        "from astroclr.cli import main\n"
        f"main(['evaluate', {str(hostile_world.run)!r}, '-e', 'pca', '-q'])\n")
    assert r.returncode == 130, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"continue with: astroclr evaluate {hostile_world.run}" in lines[0]
    assert "run --resume" not in lines[0]
    assert snapshot(hostile_world.run) == before
