"""Model packages (``astroclr export``), end to end on a tiny real run: the package reloads to
the very same encoder, every command that takes a run directory takes it, a changed file is
refused, the card states what the run recorded, and the ONNX encoder equals torch's.

One tiny run (smallcnn, 60 galaxies of the embedded sample, 16×16 px, two training steps, the
probe and label-efficiency evaluators on two seeds) and its package are built once.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy.table import Table
from test_classify import cli, one_error

import astroclr
from astroclr.plugin.specs import AstroclrError

SETS = ["dataset.limit=60", "dataset.bin=4", "train.max_steps=2", "train.threads=1",
        "run.evaluators=['probe','label_efficiency']", "run.eval_seeds=[0,1]",
        "run.train_sizes=[20]", "evaluate.probe.models=['linear']"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False, sets=SETS)
    return out


@pytest.fixture(scope="module")
def package(run_dir, tmp_path_factory):
    from astroclr.session.export import export

    return export(run_dir, tmp_path_factory.mktemp("pkg") / "tiny-sdss").path


@pytest.fixture(scope="module")
def raw():
    from astroclr_sdss.sample import load_raw_sample

    return load_raw_sample()[0][:24]


def test_a_package_reloads_to_identical_embeddings(run_dir, package, raw):
    from_run = astroclr.load(run_dir, device="cpu").embed(raw)
    from_package = astroclr.load(package, device="cpu").embed(raw)
    np.testing.assert_array_equal(from_package, from_run)


def test_the_package_holds_safetensors_card_config_and_a_manifest_of_every_file(package):
    names = sorted(p.name for p in package.iterdir())
    assert names == ["MODEL_CARD.md", "anomaly.npz", "config.toml", "embeddings.fits",
                     "manifest.json", "metrics.json", "model.safetensors", "run.json"]
    manifest = json.loads((package / "manifest.json").read_text())
    assert sorted(manifest["files"]) == [n for n in names if n != "manifest.json"]
    # the weights are a safetensors file: an 8-byte header length, then a JSON header
    head = (package / "model.safetensors").read_bytes()[:9]
    assert head[8:9] == b"{"
    assert "smallcnn" in manifest["summary"] and "sdss" in manifest["summary"]


def test_embed_command_takes_a_package_as_it_takes_the_run(run_dir, package, tmp_path, capsys):
    code, _, err = cli(["embed", str(package), "--out", str(tmp_path / "e.fits"), "-q"], capsys)
    assert code == 0, err
    got, stored = Table.read(tmp_path / "e.fits"), Table.read(run_dir / "embeddings.fits")
    np.testing.assert_allclose(got["representation"], stored["representation"], atol=1e-6)


def test_similar_searches_the_packages_own_embeddings(package, run_dir, tmp_path, capsys):
    qid = str(Table.read(run_dir / "embeddings.fits")["id"][5])
    code, out, err = cli(["similar", str(package), "--id", qid, "-k", "3", "-o",
                          str(tmp_path / "m.png")], capsys)
    assert code == 0, err
    assert len(Table.read(tmp_path / "m.csv")) == 3 and qid not in out.split()
    listed = json.loads((package / "manifest.json").read_text())["files"]
    assert sorted(p.name for p in package.iterdir()) == sorted([*listed, "manifest.json"])


def test_finetune_takes_a_package(package, tmp_path, capsys):
    code, out, err = cli(["finetune", str(package), "--out", str(tmp_path / "clf"), "--labels",
                          "20", "--mode", "probe", "-q", "--set", "recipe.max_steps=4",
                          "--set", "recipe.min_steps=4", "--set", "recipe.eval_every=2"], capsys)
    assert code == 0, err
    assert "early, late" in out


@pytest.mark.parametrize("name", ["MODEL_CARD.md", "model.safetensors", "config.toml"])
def test_a_changed_file_is_refused_naming_it(package, tmp_path, capsys, name):
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 1  # one bit, size unchanged
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(AstroclrError, match=f"{name} does not match its checksum"):
        astroclr.load(copy, device="cpu")
    code, _, err = cli(["embed", str(copy), "--out", str(tmp_path / "e.fits")], capsys)
    assert code == 2 and name in one_error(err)


def test_a_removed_file_is_refused(package, tmp_path):
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(AstroclrError, match="model.safetensors is missing"):
        astroclr.load(copy, device="cpu")


def test_a_package_is_never_written(package, capsys):
    code, _, err = cli(["evaluate", str(package)], capsys)
    assert code == 2 and "model package" in one_error(err) and "never written" in err


def test_the_card_states_survey_units_preprocessing_and_the_measured_splits(package, run_dir):
    card = (package / "MODEL_CARD.md").read_text()
    state = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    survey = state["survey"]
    assert f"{survey['pixel_scale_arcsec']} arcsec/px" in card
    assert all(f"{b} {v} arcsec" in card for b, v in survey["psf_fwhm_arcsec"].items())
    assert "Galaxy Zoo 1" in card and "Lintott" in card  # the data's credit
    assert "Bin 4x4" in card and "min-max" in card and "64x64 → 16x16" in card
    curve = metrics["evaluators"]["label_efficiency"]["metrics"]["curves"]["SimCLR probe (linear)"]
    assert f"| SimCLR probe (linear) | {curve['mean'][0]:.3f} ± {curve['std'][0]:.3f} |" in card
    for split in metrics["evaluators"]["probe"]["metrics"]["splits"].values():
        assert split["test_sha1"] in card
    assert "## Known limits" in card and "only 1 optimiser steps" in card
    assert "## Licence" in card and "BSD-3-Clause" in card


def test_export_refuses_a_folder_that_holds_other_files(run_dir, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code, _, err = cli(["export", str(run_dir), "--out", str(tmp_path), "--overwrite"], capsys)
    assert code == 2 and "not a model package" in one_error(err)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_onnx_encoder_equals_torch_on_preprocessed_images(run_dir, raw, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "onnx-pkg"
    code, stdout, err = cli(["export", str(run_dir), "--out", str(out), "--onnx"], capsys)
    assert code == 0, err
    model = astroclr.load(out, device="cpu")
    x = model.preprocess(raw)
    assert x.shape == (len(raw), 3, 16, 16) and x.dtype == np.float32
    session = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x})[0]
    np.testing.assert_allclose(got, model.embed(raw), atol=1e-4)
    assert "encoder.onnx" in json.loads((out / "manifest.json").read_text())["files"]
