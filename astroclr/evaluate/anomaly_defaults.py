"""The anomaly score's components and its default fusion (numpy-free: the evaluators declare
their parameters from these while the CLI lists plugins). See :mod:`astroclr.evaluate.anomaly`."""

ANOMALY_COMPONENTS = ("representation", "pixels", "asymmetry")
#: what the score fuses by default: measured on the embedded sample's 97 real oddities (AUROC
#: 0.919, against 0.912 with the representation added, 0.885 for the pixels alone and 0.74
#: for the representation alone; docs/quality.md)
DEFAULT_ANOMALY_COMPONENTS = ("pixels", "asymmetry")
#: what the domain-shift check of ``embed`` and ``predict`` looks at, besides the score: the two
#: image views, ``residual``, the pixels a PCA of half the run's galaxies leaves unexplained,
#: and ``noise``, the pixel-to-pixel scatter of the sky (a survey's depth and seeing move the
#: last two; the kNN distance in the PCA does not see them, docs/quality.md)
SHIFT_COMPONENTS = ("pixels", "asymmetry", "residual", "noise")
#: views whose low tail is as foreign as their high one (a deeper or sharper survey's sky)
TWO_SIDED = ("noise",)
