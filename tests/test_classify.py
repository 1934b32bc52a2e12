"""From a run to answers, end to end on real files: ``astroclr embed``, ``astroclr finetune``,
``astroclr predict``, and the same in Python (``load(run).finetune``, ``load_classifier``).

One tiny run (smallcnn, 60 galaxies of the embedded sample, 16×16 px, two training steps) and a
classifier of a few fine-tuning steps are built once for the module.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

import astroclr
from astroclr.classify.tables import read_table

LIMIT = 60
TINY = ["--set", f"dataset.limit={LIMIT}", "--set", "dataset.bin=4", "--set", "run.evaluators=[]",
        "--set", "train.max_steps=2", "--set", "train.threads=1"]
FAST = ["--set", "recipe.max_steps=6", "--set", "recipe.min_steps=6", "--set",
        "recipe.eval_every=3", "--set", "recipe.batch_size=16"]


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    """The astroclr command line, in this process: (exit code, stdout, stderr)."""
    from astroclr.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("classify") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False,
                 sets=[TINY[i + 1] for i in range(0, len(TINY), 2)])
    return out


@pytest.fixture(scope="module")
def classifier(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "clf"
    model = astroclr.load(tiny_run, device="cpu")
    model.finetune(out, labels=40, seed=1, max_steps=6, min_steps=6, eval_every=3,
                   batch_size=16, val_fraction=0.2)
    return out


# -- embed ------------------------------------------------------------------------------------

def test_embed_reproduces_the_runs_own_embeddings(tiny_run, tmp_path, capsys):
    out = tmp_path / "emb.fits"
    code, stdout, err = cli(["embed", str(tiny_run), "--out", str(out), "-q"], capsys)
    assert code == 0, err
    got, stored = Table.read(out), Table.read(tiny_run / "embeddings.fits")
    assert got.colnames[0] == "id" and got.colnames[-1] == "representation"
    assert {"label", "gz1_class"} <= set(got.colnames)
    assert list(got["id"]) == list(stored["id"])
    np.testing.assert_allclose(got["representation"], stored["representation"], atol=1e-6)
    assert got.meta["BANDS"] == "g,r,i"
    assert not (tmp_path / ".emb.fits.parts").exists()  # the work directory is removed


def test_embed_reads_a_prepared_directory(tiny_run, tmp_path, capsys):
    prepared = tmp_path / "prepared"
    code, _, err = cli(["prepare", "--out", str(prepared), "--set", f"dataset.limit={LIMIT}",
                        "--set", "dataset.bin=4", "-q"], capsys)
    assert code == 0, err
    out = tmp_path / "emb.fits"
    code, _, err = cli(["embed", str(tiny_run), "--out", str(out), "--set",
                        "dataset.input=prepared", "--set", f"dataset.path={prepared}", "-q"],
                       capsys)
    assert code == 0, err
    stored = Table.read(tiny_run / "embeddings.fits")
    np.testing.assert_allclose(Table.read(out)["representation"], stored["representation"],
                               atol=1e-6)


def test_embed_writes_parquet_when_the_suffix_says_so(tiny_run, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    out = tmp_path / "emb.parquet"
    code, _, err = cli(["embed", str(tiny_run), "--out", str(out), "-q"], capsys)
    assert code == 0, err
    got, stored = read_table(out), Table.read(tiny_run / "embeddings.fits")
    assert list(got["id"]) == list(stored["id"])
    np.testing.assert_allclose(got["representation"], stored["representation"], atol=1e-6)


def test_parquet_without_pyarrow_is_a_one_line_error(tiny_run, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = tmp_path / "emb.parquet"
    code, _, err = cli(["embed", str(tiny_run), "--out", str(out), "-q"], capsys)
    assert code == 2 and "pyarrow" in one_error(err)
    assert not out.exists()


@pytest.mark.parametrize("sets, words", [
    (["dataset.bands=['g', 'r']"], ["g, r", "g, r, i"]),
    (["dataset.bin=2"], ["32x32", "16x16"]),
    (["dataset.normalize='none'"], ["normalize", "'none'", "'minmax'"]),
])
def test_embed_refuses_a_dataset_unlike_the_run(tiny_run, tmp_path, capsys, sets, words):
    out = tmp_path / "emb.fits"
    code, _, err = cli(["embed", str(tiny_run), "--out", str(out), "-q",
                        *[a for s in sets for a in ("--set", s)]], capsys)
    line = one_error(err)
    assert code == 2 and all(w in line for w in words), line
    assert not out.exists() and not list(tmp_path.iterdir())


# -- finetune ---------------------------------------------------------------------------------

def test_classifier_directory_holds_tensors_names_bands_recipe_and_metrics(classifier, tiny_run):
    import torch

    info = json.loads((classifier / "classifier.json").read_text())
    assert info["class_names"] == ["early", "late"] and info["classes"] == [0, 1]
    assert info["bands"] == ["g", "r", "i"] and info["image_size"] == 16
    assert info["preprocessing"]["bin"] == 4
    assert info["recipe"]["labels"] == 40 and info["recipe"]["max_steps"] == 6
    assert info["n_train"] + info["n_val"] == 40 and info["n_val"] == 8
    weights = torch.load(classifier / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in weights.values())
    metrics = json.loads((classifier / "metrics.json").read_text())
    assert 0.0 <= metrics["validation"]["balanced_accuracy"] <= 1.0
    assert metrics["steps"] <= 6 and sum(metrics["class_counts"].values()) == 40
    assert metrics["history"][0]["step"] == 0  # the linear probe itself was validated first
    assert len(metrics["train_ids"]) == info["n_train"] and len(metrics["val_ids"]) == 8
    assert not set(metrics["train_ids"]) & set(metrics["val_ids"])


def test_finetune_command_in_probe_mode(tiny_run, tmp_path, capsys):
    out = tmp_path / "probe"
    code, stdout, err = cli(["finetune", str(tiny_run), "--out", str(out), "--mode", "probe",
                             "--labels", "30", "-q"], capsys)
    assert code == 0, err
    assert "early, late" in stdout
    info = json.loads((out / "classifier.json").read_text())
    assert info["mode"] == "probe" and info["n_train"] + info["n_val"] == 30
    assert json.loads((out / "metrics.json").read_text())["steps"] == 0


def test_finetune_refuses_to_overwrite_a_classifier(classifier, tiny_run, capsys):
    before = (classifier / "weights.pt").stat().st_mtime_ns
    code, _, err = cli(["finetune", str(tiny_run), "--out", str(classifier), "--mode", "probe",
                        "-q"], capsys)
    assert code == 2 and "--overwrite" in one_error(err)
    assert (classifier / "weights.pt").stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def one_class_prepared(tmp_path_factory):
    """A prepared copy of the run's galaxies with a label column holding a single class."""
    from astroclr.data.prepare import write_prepared
    from astroclr.data.prepared import GalaxiesSource
    from astroclr.data.preprocess import Preprocessing
    from astroclr_sdss.sample import load_sample

    galaxies = load_sample(preprocessing=Preprocessing(bin=4), limit=LIMIT)
    galaxies.catalog["single"] = np.where(np.arange(LIMIT) % 3 == 0, 1, -1)
    out = tmp_path_factory.mktemp("single") / "prepared"
    write_prepared(GalaxiesSource(galaxies, {"test": "single"}), out, workers=1, progress=False)
    return out


@pytest.mark.parametrize("args, words", [
    (["--label-column", "morphology"], ["--label-column", "morphology", "columns"]),
    (["--labels", "100000"], ["--labels 100000", "only"]),
    (["--label-column", "single", "--set", "dataset.input=prepared"], ["single class", "1"]),
])
def test_finetune_bad_inputs_are_one_line_errors(tiny_run, one_class_prepared, tmp_path, capsys,
                                                 args, words):
    out = tmp_path / "clf"
    if "dataset.input=prepared" in args:
        args = args + ["--set", f"dataset.path={one_class_prepared}"]
    code, _, err = cli(["finetune", str(tiny_run), "--out", str(out), "-q", *args, *FAST],
                       capsys)
    line = one_error(err)
    assert code == 2 and all(w in line for w in words), line
    assert not out.exists()


# -- predict ----------------------------------------------------------------------------------

def test_predict_writes_labels_classes_probabilities_and_catalogue(classifier, tmp_path, capsys):
    out = tmp_path / "pred.fits"
    code, _, err = cli(["predict", str(classifier), "--out", str(out), "-q"], capsys)
    assert code == 0, err
    table = Table.read(out)
    table.convert_bytestring_to_unicode()
    assert table.colnames[:5] == ["id", "pred_label", "pred_class", "prob_early", "prob_late"]
    assert {"label", "gz1_class"} <= set(table.colnames) and len(table) == LIMIT
    proba = np.stack([table["prob_early"], table["prob_late"]], axis=1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(table["pred_label"], np.argmax(proba, axis=1))
    assert list(table["pred_class"]) == [["early", "late"][i] for i in table["pred_label"]]
    # the same probabilities as the Python API on the same (preprocessed) images
    clf = astroclr.load_classifier(classifier, device="cpu")
    from astroclr.data.preprocess import Preprocessing
    from astroclr_sdss.sample import load_sample

    images = load_sample(preprocessing=Preprocessing(bin=4), limit=LIMIT).images
    np.testing.assert_allclose(clf.predict_proba_preprocessed(images), proba, atol=1e-5)


def test_load_classifier_predicts_raw_cutouts(classifier):
    from astroclr_sdss.sample import load_raw_sample

    raw, _ = load_raw_sample()
    clf = astroclr.load_classifier(classifier, device="cpu")
    labels = clf.predict(raw[:10])
    assert labels.shape == (10,) and set(labels) <= {0, 1}
    with pytest.raises(astroclr.AstroclrError, match="trained on 3 bands"):
        clf.predict(raw[:2, :2])


@pytest.fixture(scope="module")
def two_band_classifier(tmp_path_factory):
    """A classifier of another run, trained on the g and r bands only."""
    root = tmp_path_factory.mktemp("gr")
    sets = [TINY[i + 1] for i in range(0, len(TINY), 2)] + ["dataset.bands=['g', 'r']"]
    astroclr.run(out=root / "run", backbone="smallcnn", epochs=1, progress=False, sets=sets)
    astroclr.load(root / "run", device="cpu").finetune(root / "clf", mode="probe")
    return root / "clf"


def test_predict_refuses_a_classifier_of_other_bands(two_band_classifier, tmp_path, capsys):
    out = tmp_path / "pred.fits"
    code, _, err = cli(["predict", str(two_band_classifier), "--out", str(out), "-q", "--set",
                        "dataset.bands=['g', 'r', 'i']"], capsys)
    line = one_error(err)
    assert code == 2 and "g, r, i" in line and "trained on g, r" in line, line
    assert not out.exists()


def test_predict_refuses_a_directory_that_is_not_a_classifier(tiny_run, tmp_path, capsys):
    out = tmp_path / "pred.fits"
    code, _, err = cli(["predict", str(tiny_run), "--out", str(out), "-q"], capsys)
    assert code == 2 and "not an astroclr classifier" in one_error(err)
    assert not out.exists()
