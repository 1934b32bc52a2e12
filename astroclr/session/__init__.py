"""One run from end to end: training → embedding → evaluation, resume, report, export, and the
user-facing trained model (``astroclr.load``) with its conveniences."""
