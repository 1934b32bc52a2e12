"""Hook implementations of the built-in evaluators plugin.

Each evaluator lives in its own module, named as a ``"module:attr"`` string that the core
imports only when it runs, so listing plugins stays instant (no scikit-learn, torch or umap
import here).
"""

from __future__ import annotations

from typing import Iterator

from astroclr.api import (
    ANOMALY_COMPONENTS,
    DEFAULT_ANOMALY_COMPONENTS,
    EvaluatorSpec,
    Param,
    Recipe,
    hookimpl,
)
from astroclr_evaluators.declared import HIDDEN as _HIDDEN
from astroclr_evaluators.declared import LINEAR_MODELS as _LINEAR_MODELS
from astroclr_evaluators.declared import MAX_ITER as _MAX_ITER
from astroclr_evaluators.declared import MODELS as _MODELS

#: classifier evaluators: integer labels in run.label_column, on the label-efficiency curve
_CLASSIFIER = {"provides": "classifier", "target": "class"}
# cnn and finetune declare the recipe's own fields (one owner: Recipe) so that, by default, the
# pre-trained and the randomly initialised network train for the same steps on the same batches.
#: seeds as numpy and scikit-learn take them
SEED_MAX = 2**32 - 1
_SIZES = Param("sizes", list, [], "training sizes to run (empty: all of the run's train_sizes); "
               "capped at the training pool", item_type=int, low=1)
_STEPS = Recipe.params("epochs", "max_steps", "min_steps")
_BATCH_SIZE, _WEIGHT_DECAY = Recipe.params("batch_size", "weight_decay")


@hookimpl
def astroclr_evaluators() -> Iterator[EvaluatorSpec]:
    yield EvaluatorSpec(
        "probe", "linear and MLP classifiers on the frozen representations (accuracy, ROC AUC, "
        "... vs number of labels)", "astroclr_evaluators.probe:evaluate",
        params=(_MODELS, _HIDDEN, _MAX_ITER), **_CLASSIFIER)
    yield EvaluatorSpec(
        "pca", "baseline: PCA of the pixels (fitted without test images) + the same probe",
        "astroclr_evaluators.pca:evaluate",
        params=(_MODELS,
                Param("fit_on", str, "pool", "galaxies the PCA is fitted on: pool (all but the "
                      "seed's test set) or train (the N training galaxies)",
                      choices=("pool", "train")),
                Param("max_fit", int, 10000, "at most this many galaxies to fit the PCA", low=2),
                Param("components", int, 0, "number of components (0: the representation size)",
                      low=0),
                _HIDDEN, _MAX_ITER), **_CLASSIFIER)
    yield EvaluatorSpec(
        "untrained", "baseline: the same probe on an untrained backbone's features",
        "astroclr_evaluators.untrained:evaluate",
        # Linear only by default: the row asks whether training beats random features under
        # the SimCLR row's own linear probe; an MLP on 512 features is a slow extra.
        params=(_LINEAR_MODELS, Param("init_seed", int, 0, "torch seed of the random weights", low=0,
                      high=SEED_MAX),
                _HIDDEN, _MAX_ITER), **_CLASSIFIER)
    yield EvaluatorSpec(
        "colours", "baseline: the galaxy's central colours alone + the same probe",
        "astroclr_evaluators.colours:evaluate",
        params=(Param("aperture", float, 0.25, "side of the central square, fraction of the "
                      "image side", low=0.01, high=1.0),
                _LINEAR_MODELS, _HIDDEN, _MAX_ITER), **_CLASSIFIER)
    yield EvaluatorSpec(
        "knn", "k-nearest-neighbour (cosine) accuracy on the representations",
        "astroclr_evaluators.knn:evaluate", **_CLASSIFIER,
        params=(Param("k", int, 20, "number of neighbours (capped at N)", low=1),
                Param("weights", str, "distance", "neighbour weights",
                      choices=("uniform", "distance"))))
    yield EvaluatorSpec(
        "cnn", "baseline: the same backbone trained from scratch, supervised, on the same "
        "labelled galaxies (slow on a CPU)", "astroclr_evaluators.cnn:evaluate",
        params=(_SIZES, *_STEPS, *Recipe.params("lr", lr="AdamW learning rate"),
                _WEIGHT_DECAY, _BATCH_SIZE,
                Param("augment", bool, True, "apply the run's augmentations to training batches")),
        **_CLASSIFIER)
    yield EvaluatorSpec(
        "finetune", "the run's trained encoder fine-tuned with a linear head on the same "
        "labelled galaxies (linear probe first, then the cnn recipe on all N labels); slow on "
        "a CPU", "astroclr_evaluators.finetune:evaluate",
        params=(_SIZES, *_STEPS, _BATCH_SIZE, *Recipe.params("lr", "encoder_lr", "layer_decay"),
                _WEIGHT_DECAY,
                *Recipe.params("val_fraction", "eval_every", "patience", "freeze_bn",
                               "probe_init", "augment", "init", "unlabelled", "unlabelled_batch",
                               "unlabelled_weight", "threshold")),
        **_CLASSIFIER)
    yield EvaluatorSpec(
        "umap", "2-D UMAP of the representations coloured by label and catalogue columns",
        "astroclr_evaluators.umap_plot:evaluate",
        params=(Param("color_by", list, [], "catalogue columns to colour extra panels by",
                      item_type=str),
                Param("n_neighbors", int, 15, "UMAP n_neighbors", low=2),
                Param("min_dist", float, 0.1, "UMAP min_dist", low=0.0, high=1.0),
                Param("n_epochs", int, 200, "UMAP layout epochs", low=10),
                Param("max_points", int, 20000, "embed at most this many galaxies (random)",
                      low=10),
                Param("seed", int, 0, "random seed (subsample and UMAP)", low=0,
                      high=SEED_MAX),
                Param("interactive", bool, True, "also an interactive map in the report: hover "
                      "for a galaxy's cutout, click for its nearest neighbours")))
    yield EvaluatorSpec(
        "similar", "montages of the most similar galaxies (cosine) to a few examples",
        "astroclr_evaluators.similar:evaluate",
        params=(Param("k", int, 8, "neighbours per montage", low=1, high=64),
                Param("examples", int, 4, "number of example galaxies", low=1, high=50),
                Param("ids", list, [], "ids of the example galaxies (default: random, one per "
                      "class first)", item_type=str),
                Param("seed", int, 0, "random seed of the example choice", low=0,
                      high=SEED_MAX)))
    yield EvaluatorSpec(
        "retrieval", "precision@k of same-class nearest neighbours, next to PCA and the "
        "untrained network", "astroclr_evaluators.retrieval:evaluate",
        params=(Param("k", list, [1, 10, 50], "neighbours counted (capped at the labelled "
                      "galaxies)", item_type=int, low=1, min_length=1),
                Param("baselines", list, ["pca", "untrained"], "baseline features searched the "
                      "same way", item_type=str, choices=("pca", "untrained", "colours"))),
        provides="generic", target="class")
    yield EvaluatorSpec(
        "anomaly", "a score per galaxy (pixel-PCA neighbour distance and rotational asymmetry "
        "by default; the representation's neighbour distance optional) as columns of "
        "embeddings.fits, its AUROC on known oddities next to pixel baselines, and a montage "
        "of the most anomalous galaxies",
        "astroclr_evaluators.anomaly:evaluate",
        params=(Param("k", int, 10, "the neighbour scores are distances to the k-th neighbour",
                      low=1),
                Param("components", list, list(DEFAULT_ANOMALY_COMPONENTS), "what the score "
                      "fuses (mean rank)", item_type=str, choices=ANOMALY_COMPONENTS),
                Param("truth", str, "flagged", "catalogue column of known oddities (1 oddity, 0 "
                      "not, -1 unknown) the scores are measured against; skipped when the "
                      "default column is absent"),
                Param("top", int, 16, "galaxies in the montage", low=2, high=100),
                Param("trees", int, 200, "trees of the isolation-forest baselines", low=10),
                Param("seed", int, 0, "random seed (PCA, isolation forests)", low=0,
                      high=SEED_MAX)))
    yield EvaluatorSpec(
        "label_efficiency", "plot and table of balanced accuracy vs number of labels for the "
        "classifier evaluators (it runs after all of them); label-efficiency ratio",
        "astroclr_evaluators.label_efficiency:evaluate",
        params=(Param("metric", str, "balanced_accuracy", "metric plotted and compared",
                      choices=("balanced_accuracy", "accuracy", "f1_macro", "roc_auc")),),
        needs=("classifier",))
