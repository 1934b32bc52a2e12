"""A time budget: the plan is refitted to the measured step time and the run ends on its plan.

Time comes from a fake clock, so no test depends on how fast or loaded the machine is: the
arithmetic is checked on the planner itself, and two short real Lightning runs check that the
steps that ran are the plan's steps (refitted, or ended by the hard stop).
"""

from __future__ import annotations

import json

import pytest

from astroclr.train.schedule import (
    HARD_STOP,
    LATE_REFITS,
    BudgetKeeper,
    Plan,
    Schedule,
    refit,
)

BUDGET = 100.0


def budget_plan(steps: int = 50, cap: int = -1) -> Schedule:
    return Schedule(epochs=steps // 10, max_steps=steps, steps=steps, steps_per_epoch=10,
                    budget_seconds=BUDGET, measured_step_seconds=2.0, cap_steps=cap)


class FakeClock:
    """Seconds set by the test."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_steps(keeper: BudgetKeeper, clock: FakeClock, seconds_per_step, last: int) -> int | None:
    """Steps 1..last through the keeper; returns the step it stopped at (None: it did not)."""
    keeper.start(0)
    for step in range(1, last + 1):
        clock.now += seconds_per_step(step)
        if keeper.after_step(step):
            return step
        if step >= keeper.plan.current.steps:
            return None
    return None


def test_refit_divides_the_rest_of_the_budget_by_the_measured_step_time():
    new = refit(budget_plan(), step=10, step_seconds=0.5, elapsed=20.0)
    # 0.97 * 100 s - 20 s = 77 s left, 154 steps of 0.5 s after the 10 done
    assert new.steps == new.max_steps == 164
    assert new.epochs == 17 and new.measured_step_seconds == 0.5 and new.refitted_at_step == 10


def test_refit_keeps_the_users_step_cap_and_at_least_one_more_step():
    assert refit(budget_plan(cap=60), step=10, step_seconds=0.5, elapsed=20.0).steps == 60
    assert refit(budget_plan(), step=10, step_seconds=0.5, elapsed=99.0).steps == 11


def test_the_early_refit_times_real_steps_after_the_first():
    clock = FakeClock()
    plan = Plan(budget_plan())
    keeper = BudgetKeeper(plan, started=0.0, at_step=4, clock=clock)
    # the first step is slow (allocation), the others take 1 s
    stop = run_steps(keeper, clock, lambda step: 10.0 if step == 1 else 1.0, last=5)
    assert stop is None
    assert plan.current.refitted_at_step == 5 and plan.current.measured_step_seconds == 1.0
    # 0.97 * 100 s - 14 s elapsed = 83 s: 83 more steps of 1 s
    assert plan.current.steps == 5 + 83


def test_the_later_refits_land_the_last_step_on_the_budget_after_a_slowdown():
    clock = FakeClock()
    refits = []
    plan = Plan(budget_plan(), on_change=refits.append)
    keeper = BudgetKeeper(plan, started=0.0, at_step=4, clock=clock)
    # 1 s per step until the early refit (97 steps planned), then 25 % slower
    stop = run_steps(keeper, clock, lambda step: 1.0 if step <= 5 else 1.25, last=1000)
    planned = plan.current
    assert stop is None and planned.stopped_at_step is None
    assert [r.refitted_at_step for r in refits] == [5, 49, 59, 71]
    assert planned.measured_step_seconds == 1.25 and planned.refitted_at_step >= \
        LATE_REFITS[-1] * planned.steps
    # the run ended on its plan within a step of the budget's fill (97 s), not at the hard stop
    assert abs(clock.now - 0.97 * BUDGET) <= 1.25 + 1e-9


def test_the_hard_stop_ends_the_run_through_the_plan():
    clock = FakeClock()
    changes = []
    plan = Plan(budget_plan(), on_change=changes.append)
    keeper = BudgetKeeper(plan, started=0.0, at_step=4, clock=clock)
    # after the early refit a step suddenly takes 30 s
    stop = run_steps(keeper, clock, lambda step: 1.0 if step <= 5 else 30.0, last=1000)
    assert stop is not None and clock.now >= HARD_STOP * BUDGET
    assert plan.current.steps == plan.current.max_steps == plan.current.stopped_at_step == stop
    assert changes[-1] == plan.current  # written, so the run directory records what ran


def test_a_resumed_plan_is_kept_and_only_the_hard_stop_applies():
    clock = FakeClock()
    plan = Plan(budget_plan(steps=200))
    keeper = BudgetKeeper(plan, started=0.0, at_step=None, clock=clock)
    stop = run_steps(keeper, clock, lambda step: 1.0, last=1000)
    assert stop == 115  # the first step at or past HARD_STOP * BUDGET = 115 s
    assert HARD_STOP * BUDGET == pytest.approx(115)
    assert plan.current.refitted_at_step is None and plan.current.steps == stop


def test_with_several_processes_every_one_takes_rank_0s_refit_and_stop():
    rank0 = refit(budget_plan(), step=5, step_seconds=3.0, elapsed=30.0).to_dict()
    shared = []

    def share(value):  # what the strategy's broadcast from rank 0 returns on another rank
        shared.append(value)
        return rank0 if isinstance(value, dict) else len(shared) == 6  # stop after step 5

    clock = FakeClock()
    plan = Plan(budget_plan())
    keeper = BudgetKeeper(plan, started=0.0, at_step=4, clock=clock, share=share)
    stop = run_steps(keeper, clock, lambda step: 1.0, last=5)
    # this rank measured 1 s per step, rank 0 3 s: rank 0's plan is the one kept; rank 0 said
    # stop at step 5 (its clock is past the hard stop), so this rank stops there too
    assert stop == 5 and plan.current.measured_step_seconds == 3.0
    assert plan.current.steps == 5 and plan.current.stopped_at_step == 5
    assert [type(v) for v in shared] == [bool] * 4 + [dict, bool]


# -- real Lightning runs, timed by a fake clock ------------------------------------------------

SETS = ["dataset.limit=160", "dataset.bin=4", "backbone.width=8", "run.evaluators=[]",
        'augment.pipeline=["rotate_flip", "noise"]', "train.accelerator=cpu", "train.threads=1",
        "train.time_budget=40s", "train.batch_size=16", "train.epochs=1000"]


class TickingClock:
    """Advances ``seconds`` at every reading; past ``slow_from`` steps of ``model``, by
    ``slow_seconds`` (the machine becomes busy)."""

    def __init__(self, model=None, slow_from: int = 0, seconds: float = 1.0,
                 slow_seconds: float = 1.0) -> None:
        self.now, self.model, self.slow_from = 0.0, model, slow_from
        self.seconds, self.slow_seconds = seconds, slow_seconds

    def __call__(self) -> float:
        slow = self.model is not None and self.slow_from and self.model.global_step >= self.slow_from
        self.now += self.slow_seconds if slow else self.seconds
        return self.now


def fit_with_clock(tmp_path, make_clock):
    from astroclr.config import assemble_config, resolve
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import build_training
    from astroclr.runs.rundir import RunDir
    from astroclr.train.trainer import fit

    reg = get_registry()
    cfg = resolve(assemble_config(None, SETS, backbone="smallcnn"), reg)
    galaxies, model, _ = build_training(reg, cfg)
    summary = fit(model, galaxies, cfg.train, 0, RunDir(tmp_path / "run"), False, None,
                  clock=make_clock(model))
    plan = json.loads((tmp_path / "run" / "checkpoints" / "schedule.json").read_text())
    return summary, plan["schedule"]


@pytest.mark.parametrize("slow", [False, True], ids=["steady", "slowing"])
def test_a_budget_run_ends_on_its_refitted_plan(tmp_path, slow):
    summary, plan = fit_with_clock(
        tmp_path, lambda model: TickingClock(model, slow_from=12 if slow else 0, slow_seconds=3.0))
    assert plan["refitted_at_step"] is not None and plan["stopped_at_step"] is None
    assert summary["steps"] == plan["steps"] == summary["planned"]["steps"]


def test_a_budget_run_cut_by_the_hard_stop_records_the_steps_that_ran(tmp_path):
    summary, plan = fit_with_clock(
        tmp_path, lambda model: TickingClock(model, slow_from=12, slow_seconds=100.0))
    assert plan["stopped_at_step"] == summary["steps"] == plan["steps"]
    assert 12 <= summary["steps"] < 20
