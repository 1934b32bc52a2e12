"""A time budget fits the schedule to the measured speed, and training ends within it."""

from __future__ import annotations

import json

import astroclr

SETS = ("dataset.limit=300", "backbone.width=8", "run.evaluators=[]",
        'augment.pipeline=["rotate_flip", "noise"]')


def test_time_budget_is_respected_and_the_plan_refitted(tmp_path):
    run = astroclr.run(out=tmp_path / "r", backbone="smallcnn", batch_size=16,
                       time_budget="20s", sets=SETS, progress=False)
    train = run.state["train"]
    plan = json.loads((run.dir / "checkpoints" / "schedule.json").read_text())["schedule"]
    assert plan["refitted_at_step"] >= 3
    assert train["steps"] == plan["steps"]  # the refitted plan is the one that ran
    # Calibration, start-up and checkpoints included, training stays within the budget.
    assert train["train_seconds"] <= 20 * 1.5
    assert train["steps"] > 20  # and it did not stop early: the budget was used
