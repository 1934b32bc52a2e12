"""What evaluators receive and return, and running a list of them on a run.

Evaluators read representations, targets and (for baselines such as PCA or a supervised CNN)
the same preprocessed images; they never train the SimCLR model. All of them draw their
train/test galaxies from :meth:`EvalContext.split`, so they are compared on equal terms, and
share the baseline features of :meth:`EvalContext.baseline`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from astroclr.evaluate.splits import Split, make_split, target_kind
from astroclr.plugin.specs import RESULT_KINDS, AstroclrError, validate_params

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
    - ``results``: results of the evaluators that ran before this one, by name;
    - ``method_title``: what the report calls the method that made ``representations``
      (a run's: its method spec's name, e.g. ``"DINO"``; see :func:`method_title`).

    In a unit test, build one from arrays: ``EvalContext(Galaxies.from_arrays(images, survey,
    ids, labels), representations, tmp_path / "figures", seeds=(0, 1))``.
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
    method_title: str = "SimCLR"
    results: dict[str, "EvalResult"] = field(default_factory=dict)
    _splits: dict[tuple[str, int], Split] = field(default_factory=dict, repr=False)
    _baselines: dict[Any, tuple[np.ndarray, dict[str, Any]]] = field(default_factory=dict,
                                                                      repr=False)

    # -- targets and splits ----------------------------------------------------------------------
    def labels(self) -> np.ndarray:
        """The integer labels of ``label_column`` (-1 = unlabelled)."""
        return self.galaxies.labels(self.label_column)

    def target(self, column: str | None = None) -> np.ndarray:
        """A target column: integer classes (-1 = none) or float values (NaN = none).

        ``column`` defaults to ``label_column``, which must hold integer classes.
        """
        if column is None or column == self.label_column:
            return self.labels()
        return self._target(column)

    def _target(self, column: str) -> np.ndarray:
        if column not in self.galaxies.catalog.colnames:
            return self.galaxies.values(column)  # raises, naming the columns there are
        raw = np.asarray(self.galaxies.catalog[column])
        return self.galaxies.labels(column) if target_kind(raw) == "class" \
            else self.galaxies.values(column)

    @property
    def label_names(self) -> tuple[str, ...] | None:
        return self.galaxies.label_names

    def split(self, seed: int, column: str | None = None) -> Split:
        """The split of ``column``'s galaxies for ``seed``; the same object for every evaluator.

        Classes are stratified by class, continuous values by quantile bins.
        """
        key = (column or self.label_column, int(seed))
        if key not in self._splits:
            self._splits[key] = make_split(self.target(column), seed, self.test_fraction)
        return self._splits[key]

    def sizes(self, seed: int | None = None, column: str | None = None) -> list[int]:
        """``train_sizes`` capped at the training pool, plus the whole pool as the last size."""
        pool = len(self.split(self.seeds[0] if seed is None else seed, column).train_pool)
        sizes = sorted({min(int(n), pool) for n in self.train_sizes if n > 0})
        if not sizes or sizes[-1] < pool and max(self.train_sizes) >= pool:
            sizes.append(pool)
        return sorted(set(sizes))

    # -- shared baseline features --------------------------------------------------------------
    def baseline(self, name: str, split: Split | None = None) -> np.ndarray:
        """Baseline features (N, D), computed once per run and shared by every evaluator.

        ``name`` is one of ``pca`` (needs the ``split`` whose test set the fit must not see),
        ``untrained`` or ``colours``; see :mod:`astroclr.evaluate.baselines`.
        """
        return self._baseline(name, split)[0]

    def baseline_info(self, name: str, split: Split | None = None) -> dict[str, Any]:
        """How a baseline was made (for ``pca``: the rows fitted, components, explained
        variance)."""
        return self._baseline(name, split)[1]

    def _baseline(self, name: str, split: Split | None) -> tuple[np.ndarray, dict[str, Any]]:
        import astroclr.evaluate.baselines as B

        if name not in B.BASELINES:
            raise AstroclrError(f"unknown baseline {name!r}; baselines: {', '.join(B.BASELINES)}")
        if name == "pca":
            if split is None:
                raise AstroclrError("the pca baseline needs the split whose test set it must "
                                    "not be fitted on")
            key: Any = ("pca", split.seed, hashlib.sha1(split.test.tobytes()).hexdigest())
        else:
            key = name
        if key not in self._baselines:
            if name == "pca":
                rows = B.pca_rows(len(self.galaxies), split.test, B.PCA_MAX_FIT, split.seed)
                dim = int(np.asarray(self.representations).shape[1])
                self._baselines[key] = B.pca_features(self.galaxies.images, rows, dim, split.seed)
            elif name == "colours":
                self._baselines[key] = (B.central_colours(self.galaxies.images),
                                        {"aperture": B.COLOUR_APERTURE})
            else:
                self._baselines[key] = (B.untrained_features(self.build_backbone, self.embed_with),
                                        {"init_seed": B.UNTRAINED_SEED})
        return self._baselines[key]

    def results_of_kind(self, kind: str) -> dict[str, "EvalResult"]:
        """The results so far of one kind (``classifier``, ``regressor``, ...), by evaluator."""
        return {name: r for name, r in self.results.items() if r.kind == kind}


@dataclass
class EvalResult:
    """An evaluator's output: JSON-able metrics, figure files, a Markdown report section, and
    its kind (``RESULT_KINDS``; filled from the evaluator's spec when left None).

    ``columns``: per-galaxy values, ``name -> (N,) array`` in galaxy order (e.g. an anomaly
    score); a run adds them to ``embeddings.fits`` (not to ``metrics.json``).

    ``headline``: the section answers the run's question (the label-efficiency table and
    figure, the map), so the report opens with it, before the run's facts; sections with a
    headline are ordered by it (lower first). None: with the details, in evaluation order.
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    markdown: str = ""
    seconds: float = 0.0
    kind: str | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    headline: int | None = None


def evaluation_order(registry: "Registry", names: Sequence[str]) -> list[str]:
    """``names`` reordered so each evaluator runs after those it ``needs`` (by name or by the
    kind of result they provide); otherwise in the given order. A cycle is an error."""
    specs = {n: registry.get("evaluator", n) for n in names}
    after: dict[str, set[str]] = {}
    for n, spec in specs.items():
        deps = set()
        for need in spec.needs:
            deps |= {m for m, other in specs.items()
                     if m != n and (m == need or other.provides == need)}
        after[n] = deps
    order: list[str] = []
    pending = list(names)
    while pending:
        ready = next((n for n in pending if after[n] <= set(order)), None)
        if ready is None:
            raise AstroclrError(f"evaluators {', '.join(pending)} need each other's results "
                                f"(a cycle in their declared needs)")
        order.append(ready)
        pending.remove(ready)
    return order


def run_evaluators(
    registry: "Registry",
    names: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    context: EvalContext,
    on_start: Callable[[str], None] | None = None,
) -> dict[str, EvalResult]:
    """Run evaluators, each after those whose results it declares it needs."""
    context.figures_dir.mkdir(parents=True, exist_ok=True)
    for name in evaluation_order(registry, names):
        spec = registry.get("evaluator", name)
        if on_start is not None:
            on_start(name)
        start = time.perf_counter()
        result = spec.evaluate(context, **dict(params.get(name, {})))
        if not isinstance(result, EvalResult):
            raise AstroclrError(f"evaluator {name!r} returned {type(result).__name__}, "
                                f"not an EvalResult")
        result.kind = result.kind or spec.provides
        if result.kind not in RESULT_KINDS:
            raise AstroclrError(f"evaluator {name!r} returned a result of kind {result.kind!r}; "
                                f"kinds: {', '.join(RESULT_KINDS)}")
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
        raise AstroclrError(f"evaluate.{stray[0]}: parameters given for an evaluator that is "
                            f"not in run.evaluators ({', '.join(names) or 'empty'})")
    return {n: validate_params(registry.get("evaluator", n).params, dict(config.get(n, {})),
                               f"evaluate.{n}") for n in names}


def check_targets(registry: "Registry", evaluators: Sequence[str],
                  params: Mapping[str, Mapping[str, Any]], label_column: str,
                  galaxies: "Galaxies") -> None:
    """Check, right after the dataset is loaded and before anything is trained or written,
    that each evaluator's target column exists and holds what it needs (``spec.target``)."""
    for name in evaluators:
        spec = registry.get("evaluator", name)
        if spec.target is None:
            continue
        column = params.get(name, {}).get(spec.target_param) if spec.target_param else None
        column = column or label_column
        where = (f"evaluate.{name}.{spec.target_param}" if spec.target_param
                 else "run.label_column")
        if column not in galaxies.catalog.colnames:
            raise AstroclrError(f"evaluator {name!r}: {where} = {column!r} is not a column of "
                                f"dataset {galaxies.survey.name!r}; columns: "
                                f"{', '.join(galaxies.catalog.colnames)}")
        kind = galaxies.catalog[column].dtype.kind
        if spec.target == "class" and kind not in "iub":
            raise AstroclrError(f"evaluator {name!r} needs integer class labels, but {where} = "
                                f"{column!r} holds {galaxies.catalog[column].dtype} values")
        if spec.target == "value" and kind not in "iuf":
            raise AstroclrError(f"evaluator {name!r} needs numeric values, but {where} = "
                                f"{column!r} holds {galaxies.catalog[column].dtype} values")


def method_title(spec: Any) -> str:
    """A method spec's name for the report's rows: its description's part before the colon
    (``"DINO: self-distillation ..."`` → ``"DINO"``), else its registered name."""
    head, sep, _ = str(spec.description).partition(":")
    return head.strip() if sep and head.strip() else str(spec.name)
