"""A time-budget refit moves the end of the run, never the current learning rate or the
position of a method's schedules (momentum, teacher temperature)."""

from __future__ import annotations

import pytest

from astroclr.train.method import TrainingStep
from astroclr.train.model import SelfSupervisedModel, warmup_cosine


class _Planned(SelfSupervisedModel):
    """The training module's schedule state alone (no encoder, no trainer)."""

    def __init__(self, total: int, warmup: int) -> None:
        self.total_steps, self._warmup_steps = total, warmup
        self._plan_anchor, self._lr_anchor = (0, 0.0), (0, 0.0)

    def lr_factor(self, step: int) -> float:
        return warmup_cosine(step, self.total_steps, self._warmup_steps, self._lr_anchor)

    def position(self, step: int) -> TrainingStep:
        return TrainingStep(step=step, total_steps=self.total_steps, epoch=0,
                            anchor_step=self._plan_anchor[0],
                            anchor_progress=self._plan_anchor[1])


@pytest.mark.parametrize("new_total", [450, 260])
def test_a_refit_keeps_the_learning_rate_where_it_was(new_total):
    model = _Planned(total=385, warmup=19)
    before = model.lr_factor(200)
    model.retarget(new_total, step=200)
    assert model.lr_factor(200) == pytest.approx(before, abs=1e-12)
    # and the decay still ends at zero on the new last step, monotonically
    factors = [model.lr_factor(s) for s in range(200, new_total + 1)]
    assert factors[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_without_the_anchor_the_learning_rate_would_have_jumped():
    # the defect this guards against: the cosine recomputed over the new total at step 200
    assert warmup_cosine(200, 450, 19) - warmup_cosine(200, 385, 19) > 0.1


def test_a_refit_keeps_the_methods_progress_continuous():
    model = _Planned(total=385, warmup=19)
    before = model.position(300).progress
    model.retarget(330, step=300)
    assert model.position(300).progress == pytest.approx(before)
    assert model.position(330).progress == pytest.approx(1.0)
    assert model.position(315).progress == pytest.approx(before + (1 - before) / 2)


def test_a_refit_during_the_warm_up_changes_only_the_decay_that_follows():
    model = _Planned(total=385, warmup=19)
    model.retarget(500, step=10)
    assert model.lr_factor(10) == pytest.approx(11 / 19)
    assert model.lr_factor(19) == pytest.approx(1.0)
    assert model.lr_factor(500) == pytest.approx(0.0, abs=1e-12)


def test_two_refits_chain_without_a_jump():
    model = _Planned(total=385, warmup=19)
    model.retarget(420, step=150)
    mid = model.lr_factor(300)
    model.retarget(350, step=300)
    assert model.lr_factor(300) == pytest.approx(mid)
    assert model.lr_factor(350) == pytest.approx(0.0, abs=1e-12)
