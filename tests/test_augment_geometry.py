"""rotate_flip, crop_resize and cutout: what they do to a galaxy's light, and their validation."""

from __future__ import annotations

import pytest
import torch

from astroclr.data.augment import build_pipeline, resolve_augment_config
from astroclr.data.galaxies import SurveyInfo
from astroclr.plugin.specs import ConfigError

SIZE = 32


@pytest.fixture(scope="module")
def survey():
    return SurveyInfo.create("synthetic", ("g", "r", "i"), 0.4, {"g": 1.4, "r": 1.3, "i": 1.2})


def make(registry, survey, name, **given):
    names, params = resolve_augment_config(registry, {"pipeline": [name], name: given})
    if "p" in params[name]:
        params[name]["p"] = 1.0
    return build_pipeline(registry, survey, names, params)


def coords(size: int = SIZE):
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2  # about the frame's centre
    return r[None, :], r[:, None]  # x (1, W), y (H, 1)


def ellipse(n: int, sx: float = 3.0, sy: float = 1.5, size: int = SIZE) -> torch.Tensor:
    """(n, 3, size, size) elongated Gaussians centred on the frame, on a zero sky."""
    x, y = coords(size)
    img = torch.exp(-0.5 * (x**2 / sx**2 + y**2 / sy**2))
    return img.expand(n, 3, size, size).clone()


def radial_profile(img: torch.Tensor, r_max: int = 12) -> torch.Tensor:
    """Mean in 1-px annuli about the frame's centre: (B, C, H, W) -> (B, C, r_max)."""
    x, y = coords(img.shape[-1])
    ring = (x**2 + y**2).sqrt().floor().long()
    out = [img[..., ring == k].mean(-1) for k in range(r_max)]
    return torch.stack(out, -1)


def moments(img: torch.Tensor):
    """Centroid (x, y) and second moment along x of the first band: each (B,)."""
    x, y = coords(img.shape[-1])
    im = img[:, 0]
    total = im.sum((1, 2))
    cx = (im * x).sum((1, 2)) / total
    cy = (im * y).sum((1, 2)) / total
    var = (im * (x - cx[:, None, None]) ** 2).sum((1, 2)) / total
    return cx, cy, var


# -- rotate_flip ----------------------------------------------------------------------------
@pytest.mark.parametrize("interpolation, tolerance", [("bilinear", 0.05), ("bicubic", 0.02)])
def test_rotation_keeps_the_radial_profile_and_the_centre(registry, survey, interpolation,
                                                          tolerance):
    x = ellipse(64)
    out = make(registry, survey, "rotate_flip", interpolation=interpolation)(
        x, torch.Generator().manual_seed(0))
    # the images did turn: the elongation is no longer along x for most of them
    assert (out - x).abs().amax((1, 2, 3)).median() > 0.2
    # (bilinear interpolation lowers a 1.5 px-wide ridge by up to ~4 % of the peak)
    assert torch.allclose(radial_profile(out), radial_profile(x), atol=tolerance)
    cx, cy, _ = moments(out)
    assert cx.abs().max() < 0.02 and cy.abs().max() < 0.02
    # no flux of the galaxy is lost off the frame
    assert torch.allclose(out.sum((2, 3)), x.sum((2, 3)), rtol=0.01)


def test_angles_are_uniform_over_the_circle(registry, survey):
    x = ellipse(400)
    out = make(registry, survey, "rotate_flip", flip=False)(x, torch.Generator().manual_seed(1))
    xx, yy = coords()
    im = out[:, 0]
    # orientation of the major axis from the second moments: angle = ½ atan2(2 Ixy, Ixx − Iyy)
    ixx, iyy, ixy = (im * xx**2).sum((1, 2)), (im * yy**2).sum((1, 2)), (im * xx * yy).sum((1, 2))
    angle = 0.5 * torch.atan2(2 * ixy, ixx - iyy)  # in (−90°, 90°]
    counts = torch.histc(angle, bins=4, min=-torch.pi / 2, max=torch.pi / 2)
    assert counts.min() > 70  # 100 expected per quarter


def test_right_angles_only_permute_pixels(registry, survey):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(200, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    out = make(registry, survey, "rotate_flip", angles="right")(x, g)
    assert torch.equal(out.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    # all 8 symmetries occur: identify each image's transform through its first band
    found = set()
    for i in range(200):
        for k in range(4):
            for f in (False, True):
                cand = torch.rot90(x[i], k, (1, 2))
                if f:
                    cand = cand.flip(2)
                if torch.equal(cand, out[i]):
                    found.add((k, f) if not f else ((-k) % 4, f))
    assert len(found) == 8


def test_flip_mirrors_about_half_of_the_images(registry, survey):
    # a chiral shape (an L): rotations alone never map it onto its mirror image
    x = torch.zeros(400, 1, SIZE, SIZE, dtype=torch.float64)
    x[:, :, 8:24, 12:16] = 1.0
    x[:, :, 8:12, 12:22] = 1.0
    surv1 = SurveyInfo.create("one", ("r",), 0.4, {"r": 1.3})
    out = make(registry, surv1, "rotate_flip", angles="right")(x, torch.Generator().manual_seed(3))
    rotations = torch.stack([torch.rot90(x[0], k, (1, 2)) for k in range(4)])
    is_rotation = torch.stack([(out == r).flatten(1).all(1) for r in rotations]).any(0)
    assert 0.4 < 1 - is_rotation.double().mean().item() < 0.6


# -- crop_resize ----------------------------------------------------------------------------
def test_crop_resize_magnifies_by_the_inverse_scale(registry, survey):
    x = ellipse(8, sx=2.0, sy=2.0)
    out = make(registry, survey, "crop_resize", scale=[0.5, 0.5], jitter=0.0)(
        x, torch.Generator().manual_seed(0))
    _, _, var_in = moments(x)
    cx, cy, var_out = moments(out)
    # a crop of half the side resized to full size: twice as large; the centre stays put
    assert (var_out.sqrt() / var_in.sqrt()).mean().item() == pytest.approx(2.0, rel=0.05)
    assert cx.abs().max() < 0.05 and cy.abs().max() < 0.05
    # the surface brightness (peak) is kept, not the total flux
    assert torch.allclose(out.amax((2, 3)), x.amax((2, 3)), atol=0.03)


def test_crop_centre_jitter_stays_within_its_bound(registry, survey):
    x = ellipse(300, sx=2.0, sy=2.0)
    out = make(registry, survey, "crop_resize", scale=[1.0, 1.0], jitter=0.1)(
        x, torch.Generator().manual_seed(0))
    cx, cy, _ = moments(out)
    bound = 0.1 * SIZE
    assert cx.abs().max() <= bound * 1.02 and cy.abs().max() <= bound * 1.02
    # uniform on ±3.2 px: std 1.85 px
    assert cx.std().item() == pytest.approx(bound / 3**0.5, rel=0.15)


# -- cutout ---------------------------------------------------------------------------------
def test_cutout_erases_one_box_of_the_requested_size(registry, survey):
    g = torch.Generator().manual_seed(0)
    x = 1.0 + torch.rand(300, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    out = make(registry, survey, "cutout", size=[0.2, 0.4], fill="zero")(x, g)
    erased = out[:, 0] == 0
    assert torch.equal(erased[:, None].expand_as(out), out == 0)  # same box in every band
    rows, cols = erased.any(2), erased.any(1)
    h, w = rows.sum(1), cols.sum(1)
    assert torch.equal(erased.sum((1, 2)), h * w)  # a filled rectangle
    assert h.min() >= round(0.2 * SIZE) and h.max() <= round(0.4 * SIZE)
    assert w.min() >= round(0.2 * SIZE) and w.max() <= round(0.4 * SIZE)
    assert torch.equal(out[~erased[:, None].expand_as(out)], x[~erased[:, None].expand_as(x)])
    # boxes land everywhere, not only in one place
    first_rows = rows.double().argmax(1)
    assert first_rows.min() <= 2 and first_rows.max() >= SIZE - 0.4 * SIZE - 2


def test_cutout_median_fill_is_the_sky_level(registry, survey):
    g = torch.Generator().manual_seed(1)
    x = 1.0 + torch.rand(50, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    sky = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)[None, :, None, None]
    border = torch.ones(SIZE, SIZE, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    x = torch.where(border, sky, x)  # a centred "galaxy" (values ≥ 1) on a per-band sky
    out = make(registry, survey, "cutout", size=[0.3, 0.3])(x, g)
    changed = out != x
    assert changed.any((1, 2, 3)).all()
    assert torch.equal(out[changed], sky.expand_as(x)[changed])


def test_cutout_median_fill_keeps_a_bfloat16_batch(registry, survey):
    g = torch.Generator().manual_seed(1)
    x = 1.0 + torch.rand(8, 3, SIZE, SIZE, generator=g)
    border = torch.ones(SIZE, SIZE, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    x = torch.where(border, torch.tensor(0.25), x).to(torch.bfloat16)
    out = make(registry, survey, "cutout", size=[0.3, 0.3])(x, g)
    assert out.dtype == torch.bfloat16
    assert (out[out != x] == 0.25).all()


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("name, given, param", [
    ("crop_resize", {"scale": [0.9, 0.6]}, "augment.crop_resize.scale"),
    ("crop_resize", {"scale": [0.0, 0.5]}, "augment.crop_resize.scale"),
    ("crop_resize", {"scale": [0.5, 1.5]}, "augment.crop_resize.scale"),
    ("crop_resize", {"jitter": -0.1}, "augment.crop_resize.jitter"),
    ("cutout", {"size": [0.5, 0.2]}, "augment.cutout.size"),
    ("cutout", {"size": [0.1]}, "augment.cutout.size"),
    ("cutout", {"fill": "noise"}, "augment.cutout.fill"),
    ("rotate_flip", {"padding": "wrap"}, "augment.rotate_flip.padding"),
    ("rotate_flip", {"angles": "45"}, "augment.rotate_flip.angles"),
])
def test_bad_parameters_are_config_errors(registry, survey, name, given, param):
    with pytest.raises(ConfigError, match=param.replace(".", r"\.")):
        make(registry, survey, name, **given)


# -- fused geometry -------------------------------------------------------------------------
def test_consecutive_geometric_steps_resample_once_as_their_composition(registry, survey,
                                                                         monkeypatch):
    import torch.nn.functional as F

    names, params = resolve_augment_config(registry, {
        "pipeline": ["crop_resize", "rotate_flip"],
        "crop_resize": {"p": 1.0, "scale": [0.7, 0.9], "jitter": 0.08}})
    pipe = build_pipeline(registry, survey, names, params)
    crop, rotate = (step.fn for step in pipe.steps)
    x = ellipse(32, sx=2.0, sy=1.2)  # small: no flux reaches the frame's edge to be mirrored
    # the same draws, one step after the other: two interpolations
    g = torch.Generator().manual_seed(4)
    stepwise = rotate(crop(x, g), g)
    calls = []
    real = F.grid_sample
    monkeypatch.setattr(F, "grid_sample", lambda *a, **k: calls.append(1) or real(*a, **k))
    fused = pipe(x, torch.Generator().manual_seed(4))
    assert len(calls) == 1
    # the crop is off-centre and the rotation turns it: composing in the wrong order would
    # move the galaxy by up to 2 × 3.7 px; the two agree up to one interpolation's smoothing
    cx_f, cy_f, _ = moments(fused)
    cx_s, cy_s, _ = moments(stepwise)
    assert (cx_s.abs() + cy_s.abs()).max() > 1.0  # the shifts are large enough to tell
    assert torch.allclose(cx_f, cx_s, atol=0.05) and torch.allclose(cy_f, cy_s, atol=0.05)
    _, _, var_f = moments(fused)
    _, _, var_s = moments(stepwise)
    assert torch.allclose(var_f, var_s, rtol=0.1)  # the same magnification
    assert torch.allclose(fused.sum((2, 3)), stepwise.sum((2, 3)), rtol=0.02)


def test_fused_geometry_leaves_images_no_step_chose_unchanged(registry, survey):
    names, params = resolve_augment_config(registry, {
        "pipeline": ["crop_resize", "rotate_flip"], "crop_resize": {"p": 0.5}})
    pipe = build_pipeline(registry, survey, names, params)
    pipe.steps[1].p, pipe.steps[1].always = 0.5, False  # rotate only some images, too
    x = ellipse(400)
    out = pipe(x, torch.Generator().manual_seed(5))
    changed = (out != x).flatten(1).any(1).double().mean().item()
    assert changed == pytest.approx(0.75, abs=0.07)  # 1 − 0.5 × 0.5 of the images
