"""astroclr.data.preview.write_preview: a PNG grid with the expected panels and colour mapping."""

from __future__ import annotations

import numpy as np
import pytest

from astroclr.data.augment import resolve_augment_config
from astroclr.data.galaxies import Galaxies, SurveyInfo
from astroclr.data.preview import _display, _rgb_order, write_preview


def test_preview_of_the_embedded_sample(registry, sample_galaxies, tmp_path):
    import matplotlib.image as mpimg

    names, params = resolve_augment_config(registry, {"pipeline": ["rotate_flip", "psf", "noise"]})
    path = write_preview(sample_galaxies, names, params, tmp_path / "sub" / "p.png",
                         n_galaxies=3, n_views=2, registry=registry)
    assert path.exists()
    img = mpimg.imread(path)
    # 1 original + 3 single augmentations + 2 views = 6 columns, 3 rows: wider than tall
    assert img.shape[1] > 1.6 * img.shape[0]
    rgb = img[..., :3]
    assert (np.abs(rgb[..., 0] - rgb[..., 2]) > 0.05).mean() > 0.001  # in colour


def test_bands_map_to_rgb_in_wavelength_order():
    assert _rgb_order(("g", "r", "i")) == [2, 1, 0]          # R = i, G = r, B = g
    assert _rgb_order(("i", "g", "r")) == [0, 2, 1]
    assert _rgb_order(("g", "r")) is None                    # two bands: greyscale
    assert _rgb_order(("VIS", "Y", "J", "H")) is None


def test_greyscale_for_other_band_counts(registry, tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    images = rng.random((4, 2, 24, 24)).astype(np.float32)
    survey = SurveyInfo.create("two", ("g", "r"), 0.4, {"g": 1.4, "r": 1.3})
    galaxies = Galaxies.from_arrays(images, survey)
    names, params = resolve_augment_config(registry, {"pipeline": ["band_jitter"]})
    img = mpimg.imread(write_preview(galaxies, names, params, tmp_path / "g.png",
                                     n_galaxies=2, n_views=1, registry=registry))
    body = img[int(img.shape[0] * 0.2):, :, :3]
    assert np.abs(body[..., 0] - body[..., 2]).max() < 0.02


def test_display_stretch_is_asinh_above_the_sky():
    sky = np.zeros(3)
    image = np.stack([np.linspace(0, 1, 16).reshape(4, 4)] * 3)
    shown = _display(image, sky, 1.0, [2, 1, 0])
    assert shown.shape == (4, 4, 3)
    assert shown.min() == 0.0 and shown.max() == pytest.approx(1.0)
    # asinh lifts faint levels: a tenth of the peak shows at well above a tenth
    tenth = _display(np.full((3, 1, 1), 0.1), sky, 1.0, [2, 1, 0])
    assert tenth.mean() > 0.2  # linear would show 0.1
