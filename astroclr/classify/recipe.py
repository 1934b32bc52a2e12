"""The fine-tuning recipe: how a classifier is trained (see :mod:`astroclr.classify.finetune` for
why each setting is there).

Imports nothing heavy but pydantic (not on ``astroclr --help``'s path): the ``finetune`` and
``cnn`` evaluators declare their parameters from these fields while the CLI lists plugins."""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping

from pydantic import Field

from astroclr.plugin.validation import Bool, Float, Int, Table

MODES = ("finetune", "probe")
AUGMENTS = ("run", "rotate_flip", "none")
INITS = ("pretrained", "scratch")
#: how the galaxies outside the N labelled ones take part (astroclr.classify.semisup)
UNLABELLED = ("fixmatch", "ssl", "distill", "none")
# A zero or negative rate trains "successfully" into useless or NaN weights: refused before
# work. (A Param range is inclusive, so "positive" is a tiny inclusive minimum.)
_POSITIVE = 1e-12


class Recipe(Table):
    """How a classifier is trained (see the module docstring for why).

    Each field is declared once, here: ``astroclr finetune``'s ``--set recipe.KEY``, the
    ``finetune`` and ``cnn`` evaluators' parameters (:meth:`params`) and their defaults read it.
    """

    where = "recipe"

    mode: Literal[MODES] = Field("finetune", description="finetune (encoder + head, end to "  # type: ignore[valid-type]
                                 "end) or probe (a linear head on the frozen representation)")
    epochs: Int = Field(30, ge=1, description="passes over the N labelled galaxies")
    min_steps: Int = Field(200, ge=0, description="at least this many steps (small N: more "
                           "epochs)")
    max_steps: Int = Field(2000, ge=0, description="at most this many optimiser steps per "
                           "model (0: no limit)")
    batch_size: Int = Field(128, ge=1, description="batch size")
    lr: Float = Field(1e-3, ge=_POSITIVE, description="AdamW learning rate of the head")
    encoder_lr: Float = Field(1e-3, ge=_POSITIVE, description="learning rate of the encoder's "
                              "top block")
    layer_decay: Float = Field(1.0, ge=_POSITIVE, le=1.0, description="learning-rate factor "
                               "per encoder block downwards")
    weight_decay: Float = Field(1e-4, ge=0.0, description="AdamW weight decay")
    warmup_fraction: Float = Field(0.1, ge=0.0, le=1.0, description="fraction of steps with "
                                   "linear warm-up")
    val_fraction: Float = Field(0.0, ge=0.0, le=0.9, description="fraction of the N labels "
                                "held out for early stopping (0: train on all N, no early "
                                "stopping)")
    eval_every: Int = Field(20, ge=1, description="steps between validation checks")
    patience: Int = Field(6, ge=0, description="checks without improvement before stopping "
                          "(0: never stop early)")
    freeze_bn: Bool = Field(False, description="keep the encoder's batch-norm statistics")
    probe_init: Bool = Field(True, description="start the head from the linear probe")
    augment: Literal[AUGMENTS] = Field("run", description="augmentations while fine-tuning: run "  # type: ignore[valid-type]
                                       "(the run's pipeline, as cnn), rotate_flip alone, or none")
    init: Literal[INITS] = Field("pretrained", description="pretrained (the run's encoder) or "  # type: ignore[valid-type]
                                 "scratch (the same network from random weights on the labels "
                                 "alone, as cnn: the supervised baseline, to see what "
                                 "self-supervision bought)")
    unlabelled: Literal[UNLABELLED] = Field(  # type: ignore[valid-type]
        "fixmatch", description="how the galaxies outside the N labelled ones and the test "
        "split take part (their labels never read): fixmatch (confident pseudo-labels of a "
        "weak view train the strong view), ssl (the NT-Xent loss kept on them), distill (a "
        "teacher fine-tuned on the labels gives soft targets) or none")
    unlabelled_batch: Int = Field(128, ge=1, description="unlabelled galaxies per step")
    unlabelled_weight: Float = Field(1.0, ge=0.0, description="weight of the unlabelled loss "
                                     "term")
    threshold: Float = Field(0.95, ge=_POSITIVE, le=1.0, description="fixmatch: confidence a "
                             "pseudo-label needs")

    @classmethod
    def params(cls, *names: str, **helps: str) -> tuple[Any, ...]:
        """The named fields as :class:`astroclr.api.Param` records (an evaluator's declared
        parameters, with the recipe's defaults and ranges); ``helps`` rewords a field's help."""
        from astroclr.plugin.params import model_params

        found = {p.name: p for p in model_params(cls)}
        unknown = [n for n in (*names, *helps) if n not in found]
        if unknown:
            raise KeyError(f"Recipe has no field {unknown[0]!r}")
        return tuple(found[n] if n not in helps else _reworded(found[n], helps[n]) for n in names)

    @property
    def semi_supervised(self) -> bool:
        """Whether unlabelled galaxies take part (never from scratch: that is the baseline
        trained on the labels alone)."""
        return self.unlabelled != "none" and self.init == "pretrained" and self.mode != "probe"

    def steps(self, n_labels: int) -> int:
        """Optimiser steps for N labels: the ``cnn`` evaluator's rule."""
        steps = max(math.ceil(n_labels / self.batch_size) * self.epochs, self.min_steps)
        return min(steps, self.max_steps) if self.max_steps > 0 else steps

    def to_dict(self) -> dict[str, Any]:
        return self.table()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recipe":
        return cls(**{k: v for k, v in d.items() if k in cls.model_fields})


def _reworded(param: Any, help: str) -> Any:
    import dataclasses

    return dataclasses.replace(param, help=help)
