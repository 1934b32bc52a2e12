"""The probe parameters several built-in evaluators declare, owned here so that each default
has one source: the declaration the config validates and the ``evaluate`` function's keyword
default (for callers that skip the config) read the same record."""

from __future__ import annotations

from astroclr.api import Param

MODELS = Param("models", list, ["linear", "mlp"], "probe models: linear (logistic) and/or mlp",
               item_type=str, choices=("linear", "mlp"))
# Baselines default to the linear probe alone, the SimCLR row's headline probe.
LINEAR_MODELS = Param("models", list, ["linear"], "probe models: linear and/or mlp",
                      item_type=str, choices=("linear", "mlp"))
HIDDEN = Param("hidden", list, [256], "hidden layer widths of the MLP probe", item_type=int,
               low=1)
MAX_ITER = Param("max_iter", int, 200, "maximum epochs of the MLP probe", low=1)
