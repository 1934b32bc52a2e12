"""The trained model ``astroclr.load`` returns: the run's encoder (:mod:`astroclr.runs.encoder`)
with the conveniences that run a command on it, ``finetune`` and ``suggest``. They sit here,
above :mod:`astroclr.classify`, because they call it; classify itself uses the encoder below."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from astroclr.plugin.specs import AstroclrError
from astroclr.runs.encoder import TrainedEncoder, load_encoder


class TrainedModel(TrainedEncoder):
    """A trained encoder with the preprocessing its run used (``embed``, ``preprocess`` and
    ``read_images`` as :class:`~astroclr.runs.encoder.TrainedEncoder`); ``finetune`` and
    ``suggest`` run ``astroclr finetune`` and ``astroclr suggest`` on the run it came from."""

    def finetune(self, out: str | Path, *, dataset: str | None = None, sets: Sequence[str] = (),
                 label_column: str | None = None, labels: int | None = None, seed: int = 0,
                 mode: str = "finetune", overwrite: bool = False, progress: bool = False,
                 labels_file: str | Path | None = None, **recipe: Any) -> Any:
        """Train a classifier on this run's encoder from the labelled galaxies of a dataset
        (default: the run's own) and write it to ``out``; returns the loaded
        :class:`astroclr.classify.classifier.Classifier`. As ``astroclr finetune``; ``recipe``
        sets fields of :class:`astroclr.classify.recipe.Recipe` (``max_steps=500``, ...);
        ``labels_file`` trains on exactly the galaxies of a CSV/FITS labels file (``id`` +
        label column)."""
        from astroclr.classify.apply import finetune_run

        if self.run_dir is None:
            raise AstroclrError("finetune: this model was not loaded from a run directory "
                                "(use astroclr.load(RUN))")
        return finetune_run(self.run_dir, out, dataset, sets, label_column, labels, seed, mode,
                            overwrite, progress, device=self.device, labels_file=labels_file,
                            **recipe)

    def suggest(self, n: int, labels: Any = None, *, seed: int = 0, strategy: str = "diverse",
                label_column: str | None = None) -> Any:
        """The ``n`` galaxies of this run to label next, as ``astroclr suggest``: a table of
        ``id``, ``rank``, ``reason``, ``score`` (and the probe's guess when warm). ``labels``
        is a labels file (CSV/FITS, ``id`` + label column) of the galaxies labelled so far;
        see :mod:`astroclr.classify.suggest`."""
        from astroclr.classify.suggest import suggest_run

        if self.run_dir is None:
            raise AstroclrError("suggest: this model was not loaded from a run directory "
                                "(use astroclr.load(RUN))")
        return suggest_run(self.run_dir, n, labels, seed=seed, strategy=strategy,
                           label_column=label_column).table


def load(run_dir: str | Path | None = None, device: str | None = None, *,
         model: str | None = None) -> TrainedModel:
    """Load the trained encoder of a run directory or model package (``astroclr export``), or
    of the installed model plugin ``model`` (``astroclr models``), for embedding new images."""
    trained = load_encoder(run_dir, device, model=model, kind=TrainedModel)
    assert isinstance(trained, TrainedModel)
    return trained
