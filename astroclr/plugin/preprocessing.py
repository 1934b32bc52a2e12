"""The preprocessing parameters, declared once: every dataset with a ``preprocessing`` default
inherits them as its own parameters, and :class:`astroclr.api.Preprocessing` (which adds the
numpy work) is this model.

Lives in the plugin layer, below ``astroclr.data``, because the parameters a dataset declares
are part of the plugin contract; imports pydantic, so only validating paths import it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from astroclr.plugin.validation import Float, Int, Table


class PreprocessingOptions(Table):
    """The ``bin``, ``stretch``, ``softening`` and ``normalize`` of a dataset's images."""

    where = "preprocessing"

    bin: Int = Field(2, ge=1, le=16, description="k x k flux-conserving binning")
    stretch: Literal["linear", "asinh"] = Field("linear", description="linear, or "
                                                "asinh(x / softening) for flux data")
    softening: Float = Field(1.0, ge=1e-12, description="asinh softening, image units")
    normalize: Literal["minmax", "none"] = Field("minmax", description="per-image [0, 1] over "
                                                 "all bands (minmax), or none")
