"""A picture of what the augmentations do: originals, each augmentation alone, composed views.

``astroclr augment preview`` calls :func:`write_preview`. Rows are galaxies; the columns are the
original, each augmentation of the pipeline applied alone (with probability 1), and several
independent views drawn from the full pipeline (with the configured probabilities), i.e. what
SimCLR's two views look like.

Every panel of a row uses the same asinh stretch, fixed by the row's original image (its sky
level and peak), so changes in brightness, colour and noise stay visible between panels.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies
    from astroclr.plugin.registry import Registry

#: effective wavelengths (nm) used to order bands blue -> red for the colour composite
BAND_WAVELENGTH_NM = {
    "fuv": 153, "nuv": 231, "u": 355, "g": 477, "r": 623, "i": 763, "z": 913, "y": 1000,
    "vis": 715, "Y": 1080, "J": 1250, "H": 1650, "K": 2200, "Ks": 2150,
    "w1": 3400, "w2": 4600,
}
#: asinh softening as a fraction of the row's peak above sky: small = more faint structure
SOFTENING = 0.15


def write_preview(
    galaxies: "Galaxies",
    names: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    path: str | pathlib.Path,
    seed: int = 0,
    n_galaxies: int = 4,
    n_views: int = 4,
    registry: "Registry | None" = None,
) -> pathlib.Path:
    """Write a PNG grid of augmented galaxies to ``path`` and return the path.

    ``names``/``params`` come from :func:`astroclr.data.augment.resolve_augment_config`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from astroclr.data.augment import build_pipeline
    from astroclr.plugin.registry import get_registry

    registry = registry or get_registry()
    survey = galaxies.survey
    n = max(1, min(n_galaxies, len(galaxies)))
    x = torch.from_numpy(np.ascontiguousarray(galaxies.images[:n], dtype=np.float32))

    columns: list[tuple[str, np.ndarray]] = [("original", x.numpy())]
    generator = torch.Generator().manual_seed(seed)
    for name in names:
        alone = {name: {**params.get(name, {}), "p": 1.0}}
        if registry.get("augmentation", name).always:
            alone[name].pop("p")
        step = build_pipeline(registry, survey, [name], alone)
        columns.append((f"{name} only", step(x.clone(), generator).numpy()))
    pipeline = build_pipeline(registry, survey, names, params)
    for v in range(n_views):
        columns.append((f"view {v + 1}", pipeline(x.clone(), generator).numpy()))

    order = _rgb_order(survey.bands)
    fig, axes = plt.subplots(n, len(columns), figsize=(1.6 * len(columns), 1.6 * n + 0.4),
                             squeeze=False)
    for row in range(n):
        original = columns[0][1][row]
        sky = np.median(original.reshape(original.shape[0], -1), axis=1)      # (C,)
        peak = float((original.max(axis=(1, 2)) - sky).max()) or 1.0
        for col, (title, images) in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(_display(images[row], sky, peak, order), origin="lower",
                      cmap=None if order is not None else "gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
    bands = "".join(survey.bands)
    mapping = (f"RGB = {','.join(survey.bands[i] for i in order)}" if order is not None
               else "grey = mean of bands")
    fig.suptitle(f"{survey.name} ({bands}, {x.shape[-1]} px, "
                 f"{survey.pixel_scale.to_value('arcsec'):.2f}″/px); {mapping}; asinh stretch; "
                 f"seed {seed}", fontsize=8)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rgb_order(bands: Sequence[str]) -> list[int] | None:
    """Band indices for (R, G, B): reddest first; None (greyscale) unless there are 3 bands."""
    if len(bands) != 3:
        return None
    known = [b in BAND_WAVELENGTH_NM or b.lower() in BAND_WAVELENGTH_NM for b in bands]
    if all(known):
        wl = [BAND_WAVELENGTH_NM.get(b, BAND_WAVELENGTH_NM.get(b.lower())) for b in bands]
        return sorted(range(3), key=lambda i: -wl[i])
    return [2, 1, 0]  # unknown names: assume the survey lists bands blue to red


def _display(image: np.ndarray, sky: np.ndarray, peak: float,
             order: list[int] | None) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) or (H, W) in [0, 1] with an asinh stretch above the row's sky."""
    soft = SOFTENING * peak
    scaled = np.arcsinh((image - sky[:, None, None]) / soft) / np.arcsinh(peak / soft)
    scaled = np.clip(scaled, 0.0, 1.0)
    if order is None:
        return scaled.mean(axis=0)
    return np.moveaxis(scaled[order], 0, -1)
