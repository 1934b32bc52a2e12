"""What a run directory holds about itself, typed: ``run.json``'s schema (:class:`RunState`)
and the checks of what is read back (a preprocessing table, finite weights).

:class:`~astroclr.session.rundir.RunDir` owns the reads and writes; this module owns what a
valid ``run.json`` is, so that every reader (embed, finetune, similar, evaluate, resume) gets
a one-line error naming the field instead of a ``KeyError``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from astroclr.plugin.specs import AstroclrError


class RunStatus(str, Enum):
    """Where a run is: each status is written once its step is done."""

    TRAINING = "training"
    TRAINED = "trained"
    EMBEDDED = "embedded"
    COMPLETE = "complete"


class RunState(BaseModel):
    """``run.json``: what every reader of a run relies on (strict types; more fields allowed)."""

    model_config = ConfigDict(strict=True, extra="allow")
    status: Annotated[RunStatus, Field(strict=False)]
    bands: list[str] = Field(min_length=1)
    image_size: int = Field(gt=0)
    preprocessing: dict[str, Any]
    raw_size: Optional[int] = Field(default=None, gt=0)
    n_galaxies: Optional[int] = Field(default=None, ge=0)
    label_names: Optional[list[str]] = None
    dataset: Optional[str] = None
    backbone: Optional[str] = None

    @field_validator("preprocessing")
    @classmethod
    def _preprocessing(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_preprocessing(value)


def check_preprocessing(value: dict[str, Any]) -> dict[str, Any]:
    """A preprocessing table (of run.json or classifier.json) that Preprocessing accepts; a
    ValueError (pydantic's field error) otherwise."""
    from astroclr.data.preprocess import Preprocessing

    try:
        Preprocessing(**value)
    except (TypeError, AstroclrError) as exc:
        raise ValueError(" ".join(str(exc).split())) from None
    return value


def check_finite_weights(weights: Any, path: str | Path) -> Any:
    """``weights`` (a state_dict) unless a tensor holds NaN or inf: a network of them answers
    every input alike (a classifier labels every galaxy with one class), so it is refused."""
    import torch

    if not isinstance(weights, Mapping):
        raise AstroclrError(f"{path} is not a state dict of tensors")
    for name, value in weights.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and not bool(torch.isfinite(value).all()):
            raise AstroclrError(f"{path}: weight {name!r} holds NaN or inf values (training "
                                f"diverged); train it again, e.g. with a lower learning rate")
    return weights
