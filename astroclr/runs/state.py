"""What a run directory holds about itself, typed: ``run.json``'s schema (:class:`RunState`)
and the check of a preprocessing table read back (finite weights: :mod:`astroclr.train.weights`).

:class:`~astroclr.runs.rundir.RunDir` owns the reads and writes; this module owns what a
valid ``run.json`` is, so that every reader (embed, finetune, similar, evaluate, resume) gets
a one-line error naming the field instead of a ``KeyError``.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

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
