"""Is a catalogue like the run's galaxies? Its galaxies scored by the run's stored anomaly
scorer (:mod:`astroclr.evaluate.anomaly`), and two checks of the catalogue against the run's
galaxies, for ``embed`` and ``predict``:

- ``OOD_FRAC``, the fraction of its galaxies beyond the run's own 99th percentile of the
  largest robust z among the shift views (``pixels``, ``asymmetry`` and the PCA
  ``residual``): 1% of a same-survey catalogue by construction; noise lifts the residual of
  nearly every galaxy there;
- ``OOD_SHFT``, the largest shift of a view's median robust z (in units of the run's
  spread of that view): a milder change of seeing makes galaxies smoother, less asymmetric and
  better reconstructed rather than stranger, and moves the median where no galaxy leaves
  the tail.

Either above its threshold (stored with the scorer, :data:`~astroclr.evaluate.anomaly.
SHIFT_THRESHOLDS`) prints a one-line warning; both are written to the table's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies
    from astroclr.evaluate.anomaly import AnomalyScorer

#: the standard error of a median of n normal values is sqrt(pi/2)/sqrt(n) of their spread;
#: a median shift is only reported as one beyond this many standard errors (a few galaxies
#: move their median by chance)
SHIFT_ERRORS = 4.0


@dataclass(frozen=True)
class Shift:
    """A catalogue against the run's galaxies (see the module docstring)."""

    n: int                  # galaxies with finite pixels, those the check counts
    frac: float             # OOD_FRAC
    view: str               # the view whose median moved most
    median: float           # its median robust z (0 for the run's own survey)
    shift_limit: float      # |median| above which it warns: shift_warn, or SHIFT_ERRORS s.e.
    ood_warn: float

    @property
    def warns(self) -> bool:
        return self.frac > self.ood_warn or abs(self.median) > self.shift_limit

    def line(self) -> str:
        """The one line ``embed``/``predict`` print."""
        said = (f"{self.frac:.1%} of these {self.n} galaxies beyond the run's 99th percentile "
                f"(1% expected, warning above {self.ood_warn:.0%}); median {self.view} "
                f"{self.median:+.2f} of the run's spread (warning beyond "
                f"±{self.shift_limit:.2f})")
        if self.warns:
            return (f"warning: these galaxies may not look like those the run was trained on "
                    f"(other seeing, noise or survey?): {said}")
        return f"shift: {said}"


def measure(scorer: "AnomalyScorer", raw: dict[str, np.ndarray],
            images: np.ndarray) -> Shift:
    """The shift check of galaxies (``raw``: their component scores, more computed from
    ``images`` as needed); galaxies with non-finite pixels are left out."""
    z = scorer.shift_z(raw, images)
    beyond = scorer.beyond(z)
    ok = np.isfinite(beyond)
    n = int(ok.sum())
    thresholds = scorer.thresholds or {}
    medians = {c: float(np.median(v[ok])) if n else 0.0 for c, v in z.items()}
    view = max(medians, key=lambda c: abs(medians[c]))
    limit = max(thresholds["shift_warn"], SHIFT_ERRORS * np.sqrt(np.pi / 2) / np.sqrt(max(n, 1)))
    return Shift(n, float(np.mean(beyond[ok] > scorer.ood_cut)) if n else 0.0, view,
                 medians[view], float(limit), thresholds["ood_warn"])


def anomaly_against_run(rundir: Any, representations: np.ndarray, images: np.ndarray,
                        meta: dict[str, Any], verbose: bool = True) -> np.ndarray | None:
    """Score galaxies with the run's stored anomaly scorer (None for a run without one) and
    record in ``meta`` the shift check (``OOD_FRAC``, ``OOD_SHFT``), printed in one line (the
    warning even when not ``verbose``)."""
    from astroclr.evaluate.anomaly import REFIT, AnomalyScorer
    from astroclr.progress import console

    if not rundir.anomaly.is_file():
        return None
    scorer = AnomalyScorer.load(rundir.anomaly)
    scored = scorer.score(representations, images)
    if not scorer.checks_shift:  # a scorer saved before the check: the score alone
        if verbose:
            console.print(f"note: {rundir.anomaly} predates the domain-shift check (no OOD_FRAC); "
                          f"{REFIT.format(run=rundir.path)}", highlight=False, soft_wrap=True)
        return scored["score"]
    shift = measure(scorer, {c: v for c, v in scored.items() if c != "score"}, images)
    meta["OOD_FRAC"] = round(shift.frac, 6)
    meta["OOD_SHFT"] = round(shift.median, 4)
    if verbose or shift.warns:
        console.print(shift.line(), highlight=False, soft_wrap=True)  # one line, unwrapped
    return scored["score"]


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
