"""The anomaly score's components and its default fusion (numpy-free: the evaluators declare
their parameters from these while the CLI lists plugins). See :mod:`astroclr.evaluate.anomaly`."""

ANOMALY_COMPONENTS = ("representation", "pixels", "asymmetry")
#: what the score fuses by default: measured on the embedded sample's 97 real oddities (AUROC
#: 0.919, against 0.912 with the representation added, 0.885 for the pixels alone and 0.74
#: for the representation alone; docs/quality.md)
DEFAULT_ANOMALY_COMPONENTS = ("pixels", "asymmetry")
