"""The model card of a model package: written from the run's own records (``run.json``, the
resolved configuration, ``metrics.json``), so that every number in it is one the run measured.

It says what a user needs before trusting the model: the data and whom to credit, the survey,
bands, pixel scale and PSF with units, the preprocessing step by step, the method, backbone
and training budget, the label-efficiency table with the splits it was measured on, the
intended use, the known limits and the licence.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: below this many optimiser steps a model is a demonstration (the card says so)
DEMO_STEPS = 1000


def _get(doc: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(doc, Mapping) or key not in doc:
            return default
        doc = doc[key]
    return doc


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def label_efficiency(metrics: Mapping[str, Any]) -> tuple[str, list[str], dict[str, Any]]:
    """``(metric, table lines, the classifier metrics whose splits it used)`` of a run."""
    le = _get(metrics, "evaluators", "label_efficiency", "metrics", default={}) or {}
    curves = le.get("curves") or {}
    if not curves:
        return "", [], {}
    sizes = sorted({int(n) for c in curves.values() for n in c.get("sizes", [])})
    lines = ["| representation | " + " | ".join(f"N = {n}" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for label, c in curves.items():
        at = {int(n): _pm(m, s) for n, m, s in zip(c["sizes"], c["mean"], c["std"])}
        lines.append(f"| {label} | " + " | ".join(at.get(n, "") for n in sizes) + " |")
    first = next(iter(curves.values())).get("evaluator", "")
    source = _get(metrics, "evaluators", first, "metrics", default={}) or {}
    return str(le.get("metric", "")), lines, source


def summary_line(state: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """One line: method, backbone, survey and bands, input size and scale, steps, and the
    run's best-measured label efficiency (for ``astroclr models``)."""
    survey = state.get("survey", {})
    text = (f"{state.get('method', '?')} / {state.get('backbone', '?')} on "
            f"{survey.get('name', state.get('dataset', '?'))} {','.join(state.get('bands', []))}, "
            f"{state.get('image_size')} px input at {survey.get('pixel_scale_arcsec', '?')} "
            f"arcsec/px, {_get(state, 'train', 'steps', default='?')} steps")
    le = _get(metrics, "evaluators", "label_efficiency", "metrics", default={}) or {}
    curve = (le.get("curves") or {}).get(le.get("simclr", ""))
    if curve and curve.get("sizes"):
        text += (f"; {le['simclr']}: {le.get('metric', '')} {_pm(curve['mean'][-1], curve['std'][-1])}"
                 f" at N = {curve['sizes'][-1]}")
    return text


def _preprocessing_steps(state: Mapping[str, Any], dataset_line: str) -> list[str]:
    p = state.get("preprocessing", {})
    bands = ", ".join(state.get("bands", []))
    raw, size = state.get("raw_size"), state.get("image_size")
    steps = [f"Read each image as {dataset_line}, giving a raw cutout of {len(state.get('bands', []))} "
             f"bands ({bands}, in this channel order), {raw}x{raw} px, float32.",
             "Replace non-finite pixels by the image's lowest finite value."]
    if int(p.get("bin", 1)) > 1:
        steps.append(f"Bin {p['bin']}x{p['bin']} pixel blocks by summing them (flux-conserving): "
                     f"{raw}x{raw} → {size}x{size} px.")
    if p.get("stretch") == "asinh":
        steps.append(f"Stretch: asinh(x / {p.get('softening')}).")
    if p.get("normalize") == "minmax":
        steps.append("Scale each image to [0, 1] over all its bands together (min-max), so "
                     "colours survive; a flat image becomes 0.")
    steps.append(f"Feed (N, {len(state.get('bands', []))}, {size}, {size}) float32 to the encoder; "
                 f"it returns (N, D) representations.")
    return [f"{i}. {s}" for i, s in enumerate(steps, 1)]


def model_card(state: Mapping[str, Any], config: Mapping[str, Any], metrics: Mapping[str, Any],
               files: Sequence[tuple[str, int]], dataset_line: str, licence: str,
               onnx: bool) -> str:
    """The ``MODEL_CARD.md`` text of a package holding ``files`` (name, bytes)."""
    survey = state.get("survey", {})
    train = state.get("train", {})
    cfg_train = config.get("train", {})
    bands = list(state.get("bands", []))
    psf = survey.get("psf_fwhm_arcsec") or {}
    steps = train.get("steps", 0) or 0
    rep_dim = cfg_train.get("representation_dim")
    out = [f"# Model card: {state.get('method')} / {state.get('backbone')} on "
           f"{survey.get('name', state.get('dataset'))}", "",
           summary_line(state, metrics) + ".", "",
           f"Exported by astroclr {state.get('astroclr_version', '?')} from a run created "
           f"{state.get('created', '?')}. Every number below is one the run recorded.", "",
           "## Data and credits", "",
           f"- Survey: {survey.get('name', '?')}. {survey.get('note', '')}".rstrip(),
           f"- Galaxies trained on: {state.get('n_galaxies', '?')} (dataset plugin "
           f"`{state.get('dataset')}`).",
           f"- Credit: {survey.get('credit') or '(the dataset plugin names none)'}. Credit it "
           f"wherever this model, or anything made with it, is shown.", "",
           "## What the model expects", "",
           "| | |", "|---|---|",
           f"| bands (channel order) | {', '.join(bands)} |",
           f"| pixel scale of the input | {survey.get('pixel_scale_arcsec', '?')} arcsec/px |",
           "| PSF FWHM | " + (", ".join(f"{b} {v} arcsec" for b, v in psf.items()) or "unknown")
           + " |",
           f"| raw cutout | {state.get('raw_size')}x{state.get('raw_size')} px |",
           f"| model input | {state.get('image_size')}x{state.get('image_size')} px, float32 |",
           f"| representation | {rep_dim} numbers per galaxy |", "",
           "## Preprocessing, step by step", "",
           *_preprocessing_steps(state, dataset_line), "",
           "`model.preprocess(raw)` (Python API) runs steps 2 onwards on raw cutouts and gives "
           "exactly the encoder's input; `model.read_images(paths)` runs step 1 on files.", "",
           "## Method and training", "",
           "| | |", "|---|---|",
           f"| method | {state.get('method')} ({_params(config.get('method'))}) |",
           f"| backbone | {state.get('backbone')} ({_params(config.get('backbone'))}) |",
           f"| budget | epochs {cfg_train.get('epochs')}, max_steps {cfg_train.get('max_steps')}, "
           f"time_budget {cfg_train.get('time_budget') or 'none'} |",
           f"| optimiser steps taken | {steps} ({train.get('epochs', '?')} epochs) |",
           f"| batch size, learning rate | {cfg_train.get('batch_size')}, {cfg_train.get('lr')} |",
           f"| augmentations | {', '.join(_get(config, 'augment', 'pipeline', default=[]))} |",
           f"| device, precision | {train.get('device')}, {train.get('precision')} |",
           f"| training time | {train.get('train_seconds')} s; final loss {train.get('final_loss')} |",
           ""]
    out += _efficiency_section(metrics, config)
    out += ["## Intended use", "",
            f"Representations of {survey.get('name', '?')} galaxy cutouts in bands "
            f"{', '.join(bands)} at {survey.get('pixel_scale_arcsec', '?')} arcsec/px, prepared as "
            "above: similarity search (`astroclr similar`), clustering and visualisation, and "
            "features for classifiers trained on few labels (`astroclr finetune`).", "",
            "## Known limits", ""]
    out += [f"- {line}" for line in _limits(state, steps)]
    out += ["", "## Licence", "",
            f"The weights: {licence}. The training data keep their own terms: credit them as "
            "above. astroclr itself is BSD-3-Clause.", "",
            "## Files", "", "| file | bytes |", "|---|---|",
            *[f"| {name} | {size} |" for name, size in files],
            "", "`manifest.json` holds the SHA-256 of every file; astroclr verifies them "
            "before it uses the package.", "", "## Use", "", "```python", "import astroclr",
            "model = astroclr.load(\"PACKAGE_DIR\")", "vectors = model.embed([\"galaxy.jpeg\"])"
            "   # files read as in step 1", "```"]
    if onnx:
        out += ["", "Without astroclr, with onnxruntime (the input is the preprocessed images "
                "of step 5):", "", "```python", "import onnxruntime as ort",
                "session = ort.InferenceSession(\"PACKAGE_DIR/encoder.onnx\")",
                "vectors = session.run(None, {\"images\": x})[0]   # x: float32 "
                f"(N, {len(bands)}, {state.get('image_size')}, {state.get('image_size')})", "```"]
    return "\n".join(out) + "\n"


def _params(table: Any) -> str:
    if not isinstance(table, Mapping) or not table:
        return "defaults"
    return ", ".join(f"{k} = {v}" for k, v in table.items() if not isinstance(v, Mapping))


def _efficiency_section(metrics: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    metric, table, source = label_efficiency(metrics)
    out = ["## Label efficiency", ""]
    if not table:
        return out + ["Not measured (the run had no label_efficiency evaluator).", ""]
    out += [f"{metric.replace('_', ' ')}, mean ± std over seeds, of classifiers trained on N "
            "labelled galaxies, on held-out test galaxies:", "", *table, ""]
    if source:
        names = source.get("class_names") or source.get("classes") or []
        out += [f"Splits: label column `{source.get('label_column')}` (classes "
                f"{', '.join(map(str, names))}); {source.get('n_labelled')} labelled galaxies; "
                f"per seed a stratified test set of {source.get('n_test')} "
                f"(test_fraction {_get(config, 'run', 'test_fraction')}), the same for every "
                f"representation; seeds {source.get('seeds')}. Test sets by the SHA-1 of their "
                "sorted ids:", "", "| seed | test galaxies | SHA-1 of the test ids |",
                "|---|---|---|"]
        for seed, split in (source.get("splits") or {}).items():
            out.append(f"| {seed} | {split.get('n_test')} | `{split.get('test_sha1')}` |")
        out.append("")
    statement = _get(metrics, "evaluators", "label_efficiency", "metrics", "statement")
    return out + ([statement, ""] if statement else [])


def _limits(state: Mapping[str, Any], steps: int) -> list[str]:
    survey = state.get("survey", {})
    out = [f"Trained on {state.get('n_galaxies', '?')} galaxies of one survey: images of "
           "another survey, other bands, another pixel scale or PSF, or other preprocessing "
           "are out of its training distribution; its representations of them are not "
           "comparable with those of its own galaxies."]
    if steps < DEMO_STEPS:
        out.append(f"Trained for only {steps} optimiser steps: a demonstration of the format, "
                   "not a useful model.")
    if survey.get("note"):
        out.append(f"The dataset plugin notes: {survey['note']}.")
    out += ["The label-efficiency numbers hold for the splits above of this dataset; they are "
            "no promise for another catalogue.",
            "A representation is not a calibrated measurement (no photometry, no redshift)."]
    return out
