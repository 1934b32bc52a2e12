"""Labels that come back as a file: ``astroclr finetune RUN --labels-file FILE`` trains on
exactly the file's galaxies; every slip in the file is a one-line error naming the file and
the offending id or value, before anything is trained or written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table
from test_classify import cli, one_error

import astroclr
from astroclr.api import AstroclrError
from astroclr.classify.labels import read_labels

FAST = ["--set", "recipe.max_steps=4", "--set", "recipe.min_steps=4", "--set",
        "recipe.eval_every=2", "--set", "recipe.batch_size=8"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("labelsfile") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False,
                 sets=["dataset.limit=40", "dataset.bin=4", "run.evaluators=[]",
                       "train.max_steps=2", "train.threads=1"])
    return out


@pytest.fixture(scope="module")
def catalogue(tiny_run):
    emb = Table.read(tiny_run / "embeddings.fits")
    return [int(i) for i in emb["id"]], [int(v) for v in emb["label"]]


def _csv(path, text):
    path.write_text(text)
    return path


def test_finetune_trains_on_exactly_the_galaxies_of_the_file(tiny_run, catalogue, tmp_path,
                                                             capsys):
    ids, labels = catalogue
    chosen = [i for i, lab in zip(ids, labels) if lab >= 0][3:15]
    names = {i: ("early", "late")[lab] for i, lab in zip(ids, labels) if lab >= 0}
    file = _csv(tmp_path / "l.csv", "id,label\n" + "".join(f"{i},{names[i]}\n" for i in chosen))
    out = tmp_path / "clf"
    code, stdout, err = cli(["finetune", str(tiny_run), "--labels-file", str(file), "--out",
                             str(out), "-q", *FAST], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["train_ids"] + metrics["val_ids"]) == sorted(chosen)
    want = {n: sum(names[i] == n for i in chosen) for n in ("early", "late")}
    assert metrics["class_counts"] == want and metrics["labels"] == len(chosen)
    assert "(early, late)" in stdout


def test_a_fits_file_of_integer_labels_in_a_named_column(tiny_run, catalogue, tmp_path):
    ids, labels = catalogue
    table = Table({"id": np.asarray(ids[:6]), "morph": np.asarray([0, 1, 0, 1, 1, 0])})
    table.write(tmp_path / "l.fits")
    rows, values, names = read_labels(tmp_path / "l.fits", np.asarray(ids), "morph",
                                      {0: "early", 1: "late"}, "run")
    assert list(rows) == list(range(6)) and list(values) == [0, 1, 0, 1, 1, 0]
    assert names == {0: "early", 1: "late"}


def test_without_known_classes_the_file_names_them(tmp_path):
    file = _csv(tmp_path / "l.csv", "id,label\nb,spiral\na,elliptical\nc,spiral\n")
    rows, values, names = read_labels(file, np.array(["a", "b", "c"]), None, None, "x")
    assert list(rows) == [1, 0, 2] and list(values) == [1, 0, 1]
    assert names == {0: "elliptical", 1: "spiral"}


def test_string_ids_keep_their_leading_zeros(tmp_path):
    file = _csv(tmp_path / "l.csv", "id,label\n007,0\n7,1\n")
    rows, _, _ = read_labels(file, np.array(["7", "007"]), None, None, "x")
    assert list(rows) == [1, 0]


@pytest.mark.parametrize("text, words", [
    ("id,label\n123,early\n", ["'123'", "line 2", "not among the 40 galaxies"]),
    ("id,label\n{a},early\n{b},late\n{a},late\n", ["'{a}'", "twice", "line 2", "line 4"]),
    ("id,label\n{a},spiral\n", ["'{a}'", "'spiral'", "early (0), late (1)"]),
    ("id,label\n{a},7\n", ["'{a}'", "'7'", "not a class"]),
    ("id,label\n{a},\n", ["'{a}'", "no 'label' value"]),
    ("", ["is empty"]),
    ("id,label\n", ["no rows"]),
    ("objid,label\n{a},early\n", ["no 'id' column", "objid, label"]),
    ("id,morphology\n{a},early\n", ["no label column 'label'", "id, morphology"]),
])
def test_a_bad_labels_file_is_a_one_line_error_naming_it(tiny_run, catalogue, tmp_path, capsys,
                                                          text, words):
    a, b = catalogue[0][:2]
    file = _csv(tmp_path / "l.csv", text.format(a=a, b=b))
    out = tmp_path / "clf"
    code, _, err = cli(["finetune", str(tiny_run), "--labels-file", str(file), "--out", str(out),
                        "-q", *FAST], capsys)
    line = one_error(err)
    assert code == 2 and str(file) in line, line
    assert all(w.format(a=a) in line for w in words), line
    assert not out.exists()


def test_labels_and_a_labels_file_together_are_refused(tiny_run, catalogue, tmp_path, capsys):
    a = catalogue[0][0]
    file = _csv(tmp_path / "l.csv", f"id,label\n{a},early\n")
    code, _, err = cli(["finetune", str(tiny_run), "--labels-file", str(file), "--labels", "10",
                        "--out", str(tmp_path / "clf"), "-q"], capsys)
    assert code == 2 and "--labels-file" in one_error(err)


def test_an_unknown_format_is_refused(tmp_path):
    file = _csv(tmp_path / "l.txt", "id,label\n1,0\n")
    with pytest.raises(AstroclrError, match=r"l\.txt.*\.csv or \.fits"):
        read_labels(file, np.array([1]), None, None, "x")
