"""What evaluators receive and return, and running a list of them on a run.

Evaluators read representations, labels and (for baselines such as PCA or a supervised CNN)
the same preprocessed images; they never train the SimCLR model. All of them draw their
train/test galaxies from :meth:`EvalContext.split`, so they are compared on equal terms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from astroclr.evaluate.splits import Split, make_split
from astroclr.plugin.specs import AstroclrError, validate_params

if TYPE_CHECKING:
    from astroclr.data.augment import Pipeline
    from astroclr.data.galaxies import Galaxies
    from astroclr.plugin.registry import Registry


@dataclass
class EvalContext:
    """Everything an evaluator may use.

    - ``galaxies``: the preprocessed images (N, C, H, W), catalogue and survey metadata;
    - ``representations``: (N, D) float32, row i belongs to ``galaxies`` row i;
    - ``label_column``: the catalogue column holding integer labels (-1 = unlabelled);
    - ``seeds``: one split per seed; report mean and spread over them;
    - ``train_sizes``: numbers of labelled galaxies for label-efficiency curves;
    - ``figures_dir``: where to write figures (created);
    - ``build_backbone``: a fresh, untrained backbone of the run's kind (for a supervised
      baseline or an untrained-network baseline), mapping (B, C, H, W) to (B, F);
    - ``embed_with``: ``embed_with(module)`` → (N, F) features of all images from any backbone;
    - ``augment``: the run's augmentation pipeline (for a supervised baseline), or None;
    - ``trained_encoder``: a fresh copy of the run's trained encoder (images -> representation),
      for evaluators that fine-tune it; None outside a run;
    - ``results``: results of the evaluators that ran before this one, by name.
    """

    galaxies: "Galaxies"
    representations: np.ndarray
    figures_dir: Path
    label_column: str = "label"
    seeds: Sequence[int] = (0, 1, 2)
    train_sizes: Sequence[int] = (100, 300, 1000, 3000, 10000)
    test_fraction: float = 0.25
    build_backbone: Callable[[], Any] | None = None
    embed_with: Callable[[Any], np.ndarray] | None = None
    augment: "Pipeline | None" = None
    device: str = "cpu"
    trained_encoder: Callable[[], Any] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    results: dict[str, "EvalResult"] = field(default_factory=dict)
    _splits: dict[int, Split] = field(default_factory=dict, repr=False)

    def labels(self) -> np.ndarray:
        return self.galaxies.labels(self.label_column)

    @property
    def label_names(self) -> tuple[str, ...] | None:
        return self.galaxies.label_names

    def split(self, seed: int) -> Split:
        """The labelled split for ``seed``; the same object for every evaluator."""
        if seed not in self._splits:
            self._splits[seed] = make_split(self.labels(), seed, self.test_fraction)
        return self._splits[seed]

    def sizes(self, seed: int | None = None) -> list[int]:
        """``train_sizes`` capped at the training pool, plus the whole pool as the last size."""
        pool = len(self.split(self.seeds[0] if seed is None else seed).train_pool)
        sizes = sorted({min(int(n), pool) for n in self.train_sizes if n > 0})
        if not sizes or sizes[-1] < pool and max(self.train_sizes) >= pool:
            sizes.append(pool)
        return sorted(set(sizes))


@dataclass
class EvalResult:
    """An evaluator's output: JSON-able metrics, figure files, and a Markdown report section."""

    metrics: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    markdown: str = ""
    seconds: float = 0.0


def run_evaluators(
    registry: "Registry",
    names: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    context: EvalContext,
    on_start: Callable[[str], None] | None = None,
) -> dict[str, EvalResult]:
    """Run evaluators in order; each sees the results of those before it."""
    context.figures_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        spec = registry.get("evaluator", name)
        if on_start is not None:
            on_start(name)
        start = time.perf_counter()
        result = spec.evaluate(context, **dict(params.get(name, {})))
        if not isinstance(result, EvalResult):
            raise AstroclrError(f"evaluator {name!r} returned {type(result).__name__}, "
                                f"not an EvalResult")
        result.seconds = time.perf_counter() - start
        context.results[name] = result
    return context.results


def resolve_evaluator_params(
    registry: "Registry", names: Sequence[str], config: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Validate ``[evaluate.<name>]`` tables against each evaluator's declared parameters."""
    stray = sorted(set(config) - set(names))
    if stray:
        registry.get("evaluator", stray[0])
        raise AstroclrError(f"evaluate.{stray[0]}: parameters given for an evaluator that is not in "
                            f"run.evaluators ({', '.join(names) or 'empty'})")
    return {n: validate_params(registry.get("evaluator", n).params, dict(config.get(n, {})),
                               f"evaluate.{n}") for n in names}
