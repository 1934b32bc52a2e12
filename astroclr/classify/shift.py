"""Is a catalogue like the run's galaxies? Its galaxies scored by the run's stored anomaly
scorer (:mod:`astroclr.evaluate.anomaly`), and the fraction above the run's own 99th
percentile, for ``embed`` and ``predict``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies


#: a catalogue with more of its galaxies above the run's 99th percentile of anomaly score than
#: this is reported as unlike the run's galaxies (1% are there by construction; 5x that is
#: far outside the sampling noise of a few hundred galaxies, and a blurred or noisier copy of
#: the run's own survey passes it, docs/models.md)
OOD_WARN = 0.05


def anomaly_against_run(rundir: Any, representations: np.ndarray, images: np.ndarray,
                        meta: dict[str, Any], verbose: bool = True) -> np.ndarray | None:
    """Score galaxies with the run's stored anomaly scorer (None for a run without one) and
    record in ``meta`` the fraction above the run's own 99th percentile (``OOD_FRAC``),
    printed in one line (the warning above :data:`OOD_WARN` even when not ``verbose``)."""
    from astroclr.evaluate.anomaly import AnomalyScorer
    from astroclr.progress import console

    if not rundir.anomaly.is_file():
        return None
    scorer = AnomalyScorer.load(rundir.anomaly)
    score = scorer.score(representations, images)["score"]
    finite = score[np.isfinite(score)]  # galaxies with NaN pixels are skipped, not scored
    frac = float(np.mean(finite > scorer.percentile(99.0))) if len(finite) else 0.0
    meta["OOD_FRAC"] = round(frac, 6)
    note = (f"warning: {frac:.1%} of these galaxies score above the run's 99th percentile of "
            f"anomaly (1% expected): they may not look like the galaxies the run was trained "
            f"on" if frac > OOD_WARN else
            f"anomaly: {frac:.1%} of these galaxies above the run's 99th percentile (1% "
            f"expected)")
    if verbose or frac > OOD_WARN:
        console.print(note, highlight=False)
    return score


def anomaly_of_classifier(run: str, galaxies: "Galaxies", meta: dict[str, Any],
                           progress: bool) -> np.ndarray | None:
    """The anomaly score of a catalogue against the run a classifier came from (its own
    encoder embeds the galaxies when the score uses the representation); None when that run
    or its scorer is not there any more."""
    from astroclr.runs.rundir import RunDir

    rundir = RunDir(run) if run else None
    if rundir is None or not rundir.anomaly.is_file():
        return None
    reps = None
    from astroclr.evaluate.anomaly import AnomalyScorer

    if AnomalyScorer.load(rundir.anomaly).needs_representations:
        from astroclr.evaluate.embed import embed_images
        from astroclr.runs.encoder import load_encoder

        model = load_encoder(rundir.path, device="cpu")
        reps = embed_images(model.encoder, galaxies.images, model.batch_size, "cpu")
    return anomaly_against_run(rundir, reps, galaxies.images, meta, progress)
