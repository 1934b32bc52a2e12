"""The central-colours baseline measures colour in magnitudes, and classifies by it."""

from __future__ import annotations

import numpy as np
import pytest

from astroclr.api import central_colours
from astroclr.data.galaxies import Galaxies, SurveyInfo
from astroclr.evaluate.context import EvalContext
from astroclr_evaluators.colours import evaluate


def test_colour_of_a_flat_source_is_the_magnitude_difference():
    images = np.ones((1, 3, 16, 16), dtype=np.float32)
    images[:, 0] *= 0.5   # g half as bright as r: g - r = +0.753 mag
    images[:, 2] *= 2.0   # i twice r: r - i = +0.753 mag
    feats = central_colours(images, aperture=0.5)
    np.testing.assert_allclose(feats[0, :3], [0.5, 1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(feats[0, 3:], [2.5 * np.log10(2), 2.5 * np.log10(2)], rtol=1e-4)


def test_red_and_blue_galaxies_are_told_apart(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 2, n)
    images = rng.uniform(0.0, 0.05, (n, 3, 16, 16)).astype(np.float32)
    # a centred blob whose g/i balance depends on the class (red early, blue late types)
    images[:, :, 6:10, 6:10] += np.where(labels[:, None] == 0, [0.3, 0.6, 1.0], [1.0, 0.6, 0.3]
                                         )[:, :, None, None].astype(np.float32)
    survey = SurveyInfo.create("toy", ("g", "r", "i"), 0.4, {"g": 1.0, "r": 1.0, "i": 1.0})
    galaxies = Galaxies.from_arrays(images, survey, labels=labels)
    context = EvalContext(galaxies, np.zeros((n, 4), np.float32), tmp_path, seeds=(0,),
                          train_sizes=(50,))
    result = evaluate(context)
    acc = result.metrics["models"]["linear"]["by_size"]["50"]["mean"]["balanced_accuracy"]
    assert acc > 0.95


def test_one_band_is_refused(tmp_path):
    from astroclr.plugin.specs import AstroclrError

    survey = SurveyInfo.create("mono", ("r",), 0.4, {"r": 1.0})
    galaxies = Galaxies.from_arrays(np.zeros((10, 1, 8, 8), np.float32), survey,
                                    labels=[0, 1] * 5)
    with pytest.raises(AstroclrError, match="colours.*two bands"):
        evaluate(EvalContext(galaxies, np.zeros((10, 2), np.float32), tmp_path))
