"""From a trained run to answers: embed a dataset, fine-tune a classifier, predict a catalogue.

The three steps behind ``astroclr embed``, ``astroclr finetune`` and ``astroclr predict`` (and
``TrainedModel.finetune``). Each validates everything it can (the output's format, the dataset
against the model's bands, image size and preprocessing, the label column and the number of
labels) before it writes anything, and writes its output atomically.

A dataset is configured as the run configured its own: with the run's own dataset plugin, the
run's ``[dataset]`` table is the starting point (so bands and preprocessing match without
repeating them), and ``--set dataset.key=value`` changes it; another plugin starts from its
defaults.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

import astroclr.config as cfgmod
from astroclr.output import locks_out_dir
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.classify.classifier import Classifier
    from astroclr.data.galaxies import Galaxies
    from astroclr.resolved import Config

#: keyword arguments that set where inference runs, as ``astroclr run`` takes them
DEVICE_OPTIONS = ("accelerator", "devices", "num_nodes", "strategy")
#: the train.* keys inference reads (embed, predict); any other would be dropped unread
INFERENCE_KEYS = (*DEVICE_OPTIONS, "precision", "threads", "embed_batch_size")


def dataset_config(base_dataset: str, base_params: Mapping[str, Any], dataset: str | None,
                   sets: Sequence[str] = (), devices: Mapping[str, Any] | None = None,
                   train: Mapping[str, Any] | None = None) -> "Config":
    """The resolved configuration that loads ``dataset`` (default: ``base_dataset``).

    ``sets`` may set ``dataset.*`` and ``train.*`` keys (``train.embed_batch_size``,
    ``train.devices``, ...); ``devices`` are the command's --devices/--strategy/... options.
    """
    from astroclr.plugin.registry import get_registry

    name = dataset or base_dataset
    raw: dict[str, Any] = {
        "run": {"dataset": name, "evaluators": []},
        "train": dict(train or {}),
        "dataset": copy.deepcopy(dict(base_params)) if name == base_dataset else {},
    }
    for assignment in sets:
        part = cfgmod.parse_set(assignment)
        bad = sorted(set(part) - {"dataset", "train"})
        if bad:
            raise AstroclrError(f"--set {assignment!r}: only dataset.* and train.* keys apply here")
        stray = sorted(set(part.get("train", {})) - set(INFERENCE_KEYS))
        if stray:
            raise AstroclrError(f"--set {assignment!r}: train.{stray[0]} does not apply here "
                                f"(inference reads train.{', train.'.join(INFERENCE_KEYS)})")
        raw = cfgmod.merge(raw, part)
    for key, value in (devices or {}).items():
        if value is not None:
            raw["train"][key] = value
    return cfgmod.resolve(raw, get_registry())


def load_matching(cfg: "Config", bands: Sequence[str], image_size: int,
                  preprocessing: Mapping[str, Any], what: str) -> "Galaxies":
    """The configured dataset, checked against the bands, image size and preprocessing of
    ``what`` (a run or a classifier): a mismatch is a one-line error naming both."""
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import load_dataset

    galaxies = load_dataset(get_registry(), cfg)
    name = cfg.run.dataset
    if tuple(galaxies.bands) != tuple(bands):
        raise AstroclrError(f"dataset {name!r} has bands {', '.join(galaxies.bands)} but {what} "
                            f"was trained on {', '.join(bands)}")
    if galaxies.image_size != int(image_size):
        raise AstroclrError(f"dataset {name!r} has {galaxies.image_size}x{galaxies.image_size} px "
                            f"images but {what} was trained on {image_size}x{image_size} px "
                            f"(set dataset.bin or dataset.size to match)")
    prep = galaxies.preprocessing.to_dict()
    if prep != dict(preprocessing):
        diff = ", ".join(f"{k} {prep.get(k)!r} vs {preprocessing.get(k)!r}"
                         for k in sorted(set(prep) | set(preprocessing))
                         if prep.get(k) != preprocessing.get(k))
        raise AstroclrError(f"dataset {name!r} is preprocessed differently from {what} "
                            f"({diff}); set the dataset's parameters to match")
    return galaxies


def _catalog(galaxies: "Galaxies", skip: Sequence[str]) -> list[tuple[str, Any]]:
    from astroclr.files import catalog_columns

    return [(c, galaxies.catalog[c]) for c in catalog_columns(galaxies.catalog, skip)]


def embed_dataset(run_dir: str | Path, out: str | Path, dataset: str | None = None,
                  sets: Sequence[str] = (), progress: bool = False, overwrite: bool = False,
                  report: Callable[[str], None] | None = None, **devices: Any) -> Path | None:
    """Embed a dataset with a run's encoder into a table: ``id``, the catalogue's columns and
    ``representation``. Resumable; on several processes each writes a shard and the first
    merges them and writes the table (the others return None). Galaxies whose representation
    is not finite (NaN or inf pixels) are left out, counted in the table's ``NSKIPPED`` and
    said through ``report``."""
    from astroclr.classify.shift import anomaly_against_run
    from astroclr.classify.tables import check_table_out, table_format, write_finite
    from astroclr.output import output_work
    from astroclr.runs.encoder import load_encoder
    from astroclr.runs.rundir import open_run
    from astroclr.train.infer import infer, remove_work
    from astroclr.train.launch import launched_rank

    out = Path(out)
    table_format(out)
    existing = open_run(run_dir)
    state = existing.state
    base = cfgmod.resolve(existing.config, _registry())
    cfg = dataset_config(base.run.dataset, base.dataset, dataset, sets, devices,
                         _device_table(base))
    check_table_out(out, cfg, [existing.dir], overwrite)
    model = load_encoder(run_dir, device="cpu")
    with output_work(out, "embed", enabled=launched_rank() == 0) as work:
        galaxies = load_matching(cfg, state["bands"], state["image_size"],
                                 state["preprocessing"], f"run {existing.dir}")
        reps = infer(model.encoder, galaxies.images, galaxies.ids, work, cfg.train,
                     cfg.train.embed_batch_size, progress=progress)
        if reps is None:
            return None
        meta = {"BANDS": ",".join(galaxies.bands), "SURVEY": galaxies.survey.name,
                "RUN": str(Path(run_dir).resolve())}
        anomaly = anomaly_against_run(existing.rundir, reps, galaxies.images, meta, progress)
        columns = [("id", galaxies.catalog["id"]),
                   *_catalog(galaxies, ("id", "representation", "anomaly_score")),
                   *([("anomaly_score", anomaly)] if anomaly is not None else []),
                   ("representation", reps)]
        write_finite(out, galaxies, reps, columns, meta, report)
    remove_work(work)
    return out


def _registry() -> Any:
    from astroclr.plugin.registry import get_registry

    return get_registry()


def _device_table(base: "Config") -> dict[str, Any]:
    """The run's inference settings that carry over (batch size, threads), not its devices."""
    return {"embed_batch_size": base.train.embed_batch_size, "threads": base.train.threads}


def column_name(name: str) -> str:
    """A class name as part of a column name: letters, digits and underscores."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or "class"


def probability_columns(class_names: Sequence[str]) -> list[str]:
    """``prob_<class>`` per class, made unique when two names clean to the same text."""
    out: list[str] = []
    for i, name in enumerate(class_names):
        col = f"prob_{column_name(name)}"
        out.append(col if col not in out else f"{col}_{i}")
    return out


def predict_dataset(classifier: str | Path, out: str | Path, dataset: str | None = None,
                    sets: Sequence[str] = (), progress: bool = False, overwrite: bool = False,
                    report: Callable[[str], None] | None = None,
                    **devices: Any) -> Path | None:
    """Apply a classifier directory to a dataset: a table of ``id``, ``pred_label``,
    ``pred_class``, ``prob_<class>`` per class and the catalogue's columns; streamed, resumable,
    sharded like :func:`embed_dataset` (and, like it, leaving out non-finite galaxies)."""
    import torch

    from astroclr.classify.classifier import load_classifier
    from astroclr.classify.shift import anomaly_of_classifier
    from astroclr.classify.tables import check_table_out, table_format, write_finite
    from astroclr.output import output_work
    from astroclr.train.infer import infer, remove_work
    from astroclr.train.launch import launched_rank

    out = Path(out)
    table_format(out)
    clf = load_classifier(classifier, device="cpu")
    info = clf.info
    cfg = dataset_config(info.dataset, info.dataset_params, dataset, sets, devices)
    check_table_out(out, cfg, [Path(classifier)], overwrite)
    with output_work(out, "predict", enabled=launched_rank() == 0) as work:
        galaxies = load_matching(cfg, info.bands, info.image_size, info.preprocessing,
                                 f"classifier {classifier}")
        proba = infer(clf.net, galaxies.images, galaxies.ids, work, cfg.train,
                      cfg.train.embed_batch_size,
                      transform=lambda logits: torch.softmax(logits.float(), dim=1),
                      progress=progress, description="predicting")
        if proba is None:
            return None
        classes = np.asarray(info.classes, dtype=np.int64)
        names = np.asarray(info.class_names, dtype=str)
        prob_cols = probability_columns(info.class_names)
        meta = {"BANDS": ",".join(galaxies.bands), "SURVEY": galaxies.survey.name,
                "CLASSES": ",".join(info.class_names)}
        anomaly = anomaly_of_classifier(info.run, galaxies, meta, progress)
        taken = {"id", "pred_label", "pred_class", *prob_cols, "anomaly_score"}
        columns: list[tuple[str, Any]] = [
            ("id", galaxies.catalog["id"]),
            ("pred_label", lambda a, b: classes[np.argmax(proba[a:b], axis=1)]),
            ("pred_class", lambda a, b: names[np.argmax(proba[a:b], axis=1)]),
            *[(col, (lambda k: lambda a, b: np.asarray(proba[a:b, k]))(k))
              for k, col in enumerate(prob_cols)],
            *([("anomaly_score", anomaly)] if anomaly is not None else []),
            *_catalog(galaxies, tuple(taken)),
        ]
        write_finite(out, galaxies, proba, columns, meta, report)
    remove_work(work)
    return out


@locks_out_dir("finetune")
def finetune_run(run_dir: str | Path, out: str | Path, dataset: str | None = None,
                 sets: Sequence[str] = (), label_column: str | None = None,
                 labels: int | None = None, seed: int = 0, mode: str = "finetune",
                 overwrite: bool = False, progress: bool = False,
                 device: str | None = None, labels_file: str | Path | None = None,
                 **recipe: Any) -> "Classifier":
    """Train a classifier from a run's encoder and the labelled galaxies of a dataset (default:
    the run's own), on ``labels`` of them (stratified, seeded; default all) or on exactly the
    galaxies of ``labels_file`` (:mod:`astroclr.classify.labels`), and write its directory.
    ``recipe`` overrides :class:`~astroclr.classify.recipe.Recipe` fields."""
    import torch

    from astroclr.classify.classifier import (
        ClassifierInfo,
        check_classifier_out,
        check_trained_weights,
        class_names_of,
        classifier_net,
        load_classifier,
        write_classifier,
    )
    from astroclr.classify.finetune import train_classifier
    from astroclr.classify.parts import (
        fresh_copy,
        holdout,
        scratch_encoder,
        select_augment,
        stratified_subset,
    )
    from astroclr.classify.recipe import Recipe
    from astroclr.classify.semisup import unlabelled_rows
    from astroclr.classify.tables import finite_images
    from astroclr.data.augment import pipeline_from_config
    from astroclr.runs.build import build_backbone
    from astroclr.runs.encoder import load_encoder
    from astroclr.runs.rundir import open_run

    sets, recipe_sets = split_recipe_sets(sets)
    # mode and the keyword settings are finetune's command-line options: errors name them so
    spec = Recipe.check({"mode": mode, **recipe, **recipe_sets},
                        labels={k: f"--{k}" for k in ("mode", *recipe) if k not in recipe_sets})
    out = Path(out)
    check_classifier_out(out, overwrite)
    existing = open_run(run_dir)
    state = existing.state
    registry = _registry()
    base = cfgmod.resolve(existing.config, registry)
    _refuse_train_sets(sets)
    cfg = dataset_config(base.run.dataset, base.dataset, dataset, sets)
    from astroclr.output import check_output

    check_output(out, "--out", inputs=list(cfg.dataset.values()), reads=[existing.dir],
                 is_dir=True)
    column = label_column or base.run.label_column
    galaxies = load_matching(cfg, state["bands"], state["image_size"], state["preprocessing"],
                             f"run {existing.dir}")
    label_names = galaxies.label_names if column == "label" else None
    if labels_file is not None:  # exactly the file's galaxies, the others unlabelled (-1)
        from astroclr.classify.labels import labels_from_file

        if labels is not None:
            raise AstroclrError("--labels and --labels-file: give one (the file says which "
                                "galaxies to train on)")
        all_labels, label_names = labels_from_file(labels_file, galaxies, column, label_column)
    elif column not in galaxies.catalog.colnames:
        raise AstroclrError(f"--label-column {column!r}: dataset {cfg.run.dataset!r} has no such "
                            f"column; columns: {', '.join(galaxies.catalog.colnames)}")
    else:
        all_labels = galaxies.labels(column)
    labelled = np.flatnonzero(all_labels >= 0)
    labelled, nonfinite = finite_images(galaxies.images, labelled)  # NaN/inf: left out
    classes = np.unique(all_labels[labelled])
    if len(classes) < 2:
        found = ", ".join(map(str, classes)) or "none (every galaxy is -1, unlabelled)"
        raise AstroclrError(f"label column {column!r} of dataset {cfg.run.dataset!r} holds a "
                            f"single class ({found}); a classifier needs at least two")
    n = len(labelled) if labels is None else int(labels)
    if n > len(labelled):
        raise AstroclrError(f"--labels {n}: dataset {cfg.run.dataset!r} has only {len(labelled)} "
                            f"labelled galaxies in column {column!r}")
    if n < 2 * len(classes):
        raise AstroclrError(f"--labels {n}: need at least {2 * len(classes)} (two per class of "
                            f"{len(classes)})")
    chosen = stratified_subset(labelled, all_labels[labelled], n, seed)
    y_chosen = np.searchsorted(classes, all_labels[chosen])
    train_rows, val_rows = holdout(chosen, y_chosen, spec.val_fraction, seed)

    def y_of(rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(classes, all_labels[rows])

    model = load_encoder(run_dir, device="cpu")
    pipeline = pipeline_from_config(registry, galaxies.survey, base.augment)
    augment = select_augment(spec.augment, pipeline, galaxies.survey)
    device = device or base.train.device
    torch.manual_seed(seed)
    if spec.init == "scratch":
        encoder = scratch_encoder(build_backbone(registry, base, len(state["bands"]),
                                                 state["image_size"]),
                                  base.train.representation_dim)
    else:
        encoder = fresh_copy(model.encoder)
    net = classifier_net(encoder, len(classes))
    # every galaxy but the chosen labelled ones (labelled or not: their labels are not read)
    unlabelled = unlabelled_rows(len(galaxies), chosen) if spec.semi_supervised else None
    if unlabelled is not None:  # NaN/inf galaxies would poison the unlabelled term too
        unlabelled = finite_images(galaxies.images, unlabelled)[0]
    log = train_classifier(net, galaxies.images, train_rows, y_of(train_rows), val_rows,
                           y_of(val_rows), len(classes), spec, augment=augment, seed=seed,
                           device=device, n_labels=n, progress=progress,
                           unlabelled_rows=unlabelled, survey=galaxies.survey)
    check_trained_weights(net)
    names = class_names_of(classes, label_names)
    info = ClassifierInfo(
        classes=[int(c) for c in classes], class_names=names, bands=list(state["bands"]),
        image_size=int(state["image_size"]), preprocessing=dict(state["preprocessing"]),
        backbone=base.run.backbone, backbone_params=dict(base.backbone),
        representation_dim=base.train.representation_dim, label_column=column, mode=spec.mode,
        recipe={**spec.to_dict(), "seed": seed, "labels": n,
                "augmentations": getattr(augment, "names", [])},
        run=str(Path(run_dir).resolve()), dataset=cfg.run.dataset,
        dataset_params=cfg.tables()["dataset"], n_train=int(len(train_rows)),
        n_val=int(len(val_rows)))
    counts = {name: int((all_labels[chosen] == c).sum()) for c, name in zip(classes, names)}
    ids = galaxies.ids
    # which galaxies it learnt from: a test of the classifier must leave them out
    metrics = {"validation": log.get("validation"), "labels": n, "class_counts": counts,
               **{k: v for k, v in log.items() if k != "validation"},
               "train_ids": ids[train_rows].tolist(), "val_ids": ids[val_rows].tolist(),
               "skipped_nonfinite": nonfinite}
    write_classifier(out, net.cpu(), info, metrics)
    return load_classifier(out, device=device)


def _refuse_train_sets(sets: Sequence[str]) -> None:
    """finetune trains on the run's device with its recipe: a train.* key would be dropped."""
    for assignment in sets:
        if "train" in cfgmod.parse_set(assignment):
            raise AstroclrError(f"--set {assignment!r}: train.* keys do not apply to finetune "
                                f"(it trains with the recipe: --set recipe.KEY=VALUE)")


def split_recipe_sets(sets: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """``--set recipe.KEY=VALUE`` assignments (fields of the fine-tuning recipe) apart from
    the dataset's and inference's, checked against the recipe's declaration (an unknown key or
    a bad value is a one-line error naming ``recipe.KEY``)."""
    from astroclr.classify.recipe import Recipe

    rest, recipe = [], {}
    for assignment in sets:
        part = cfgmod.parse_set(assignment)
        if set(part) != {"recipe"}:
            rest.append(assignment)
            continue
        for key, value in part["recipe"].items():
            if key == "mode" or key not in Recipe.model_fields or isinstance(value, dict):
                keys = ", ".join(sorted(set(Recipe.model_fields) - {"mode"}))
                raise AstroclrError(f"--set {assignment!r}: unknown recipe key; keys: {keys}")
            recipe[key] = value
    checked = Recipe.check(recipe)
    return rest, {key: getattr(checked, key) for key in recipe}

