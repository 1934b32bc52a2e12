"""Self-supervised methods as plugins: views, the encoder a run keeps, naming, resume checks.

Each method's exact resume is in test_resume.py, its distributed run in test_ddp.py, a
third-party method package in test_plugins.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from astropy.table import Table

import astroclr
from astroclr import hookimpl
from astroclr.config import assemble_config, resolve
from astroclr.plugin.registry import Registry
from astroclr.plugin.specs import AstroclrError, MethodSpec, ViewSpec
from astroclr.runs.build import build_training

SETS = ["dataset.limit=64", "dataset.bin=4", "run.evaluators=[]", "train.threads=1"]


def _built(registry, *sets, **options):
    cfg = resolve(assemble_config(None, SETS + list(sets), backbone="smallcnn", **options),
                  registry)
    return build_training(registry, cfg)


def test_every_builtin_method_is_registered(registry):
    assert {"simclr", "moco", "byol", "vicreg", "barlowtwins", "dino"} <= set(
        registry.parts("method"))


def test_simclr_views_are_the_configured_pipeline_twice(registry):
    _, model, pipeline = _built(registry)
    assert model.view_pipelines == [pipeline, pipeline]


def test_byol_views_are_asymmetric_in_seeing_only(registry):
    _, model, pipeline = _built(registry, method="byol")
    first, second = ({s.name: s.p for s in p.steps} for p in model.view_pipelines)
    assert (first["psf"], second["psf"]) == (1.0, 0.1)
    configured = {s.name: s.p for s in pipeline.steps}
    assert {k: v for k, v in first.items() if k != "psf"} == \
        {k: v for k, v in configured.items() if k != "psf"} == \
        {k: v for k, v in second.items() if k != "psf"}
    _, model, pipeline = _built(registry, "method.asymmetric=false", method="byol")
    assert model.view_pipelines == [pipeline, pipeline]


def test_dino_local_views_are_smaller_crops(registry):
    galaxies, model, _ = _built(registry, "method.local_views=2", "method.local_size=0.5",
                                method="dino")
    x = torch.from_numpy(np.asarray(galaxies.images[:4], dtype=np.float32))
    views = model.views(x)
    side = x.shape[-1]
    assert [tuple(v.shape[-2:]) for v in views] == [(side, side)] * 2 + [(side // 2,) * 2] * 2
    local = {s.name: s for s in model.view_pipelines[2].steps}["crop_resize"]
    assert local.p == 1.0


class _BadViews:
    """A method plugin whose second view overrides an augmentation parameter wrongly."""

    @hookimpl
    def astroclr_methods(self):
        def build(encoder, hidden_dim, output_dim):
            from astroclr_methods.simclr import SimCLR

            method = SimCLR(encoder, hidden_dim, output_dim, temperature=0.1)
            method.views = (ViewSpec(), ViewSpec(augment={"psf": {"fwhm": [1.0]}}))
            return method

        yield MethodSpec("badviews", "second view with a one-number seeing range", build)


def test_a_view_override_of_a_bad_value_is_rejected_naming_it():
    registry = Registry()
    with registry.registered(_BadViews(), "badviews"):
        with pytest.raises(AstroclrError, match=r"augment.psf.fwhm: expected 2 values"):
            _built(registry, method="badviews")


def test_dino_keeps_the_teacher_unless_told(registry):
    _, model, _ = _built(registry, method="dino")
    assert model.trained_encoder() is model.method.teacher_encoder
    _, model, _ = _built(registry, "method.keep=student", method="dino")
    assert model.trained_encoder() is model.encoder


def test_momentum_encoders_are_not_trained_by_the_optimiser(registry):
    _, model, _ = _built(registry, method="moco")
    assert not any(p.requires_grad for p in model.method.encoder_momentum.parameters())
    model.total_steps = 10
    optimised = {id(p) for g in model.configure_optimizers()["optimizer"].param_groups
                 for p in g["params"]}
    assert not optimised & {id(p) for p in model.method.encoder_momentum.parameters()}


@pytest.fixture(scope="module")
def dino_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("methods") / "dino"
    return astroclr.run(out=out, backbone="smallcnn", method="dino", epochs=1, batch_size=16,
                        sets=SETS, progress=False)


def test_run_json_metrics_and_report_name_the_method(dino_run):
    assert json.loads((dino_run.dir / "run.json").read_text())["method"] == "dino"
    summary = json.loads((dino_run.dir / "metrics.json").read_text())["summary"]
    assert summary["method"] == "dino"
    assert "| method | dino |" in (dino_run.dir / "report.md").read_text()


def test_every_builtin_method_has_its_name_for_the_report(registry):
    from astroclr.evaluate.context import method_title

    titles = {name: method_title(registry.get("method", name))
              for name in ("simclr", "moco", "byol", "vicreg", "barlowtwins", "dino")}
    assert titles == {"simclr": "SimCLR", "moco": "MoCo v2", "byol": "BYOL", "vicreg": "VICReg",
                      "barlowtwins": "Barlow Twins", "dino": "DINO"}


def test_a_runs_evaluators_name_their_rows_after_its_method(dino_run, registry):
    from astroclr.evaluate.context import run_evaluators
    from astroclr.session.runner import open_evaluation

    context = open_evaluation(dino_run.dir, ["run.eval_seeds=[0]", "run.train_sizes=[20]"])
    assert list(context.seeds) == [0]  # the assignments apply over the run's own config
    assert context.method_title == "DINO"
    knn = run_evaluators(registry, ["knn"], {}, context)["knn"]
    assert knn.metrics["models"]["knn"]["label"].startswith("DINO kNN")
    assert "SimCLR" not in knn.markdown


def test_load_embeds_with_the_kept_encoder(dino_run):
    from astroclr_sdss.sample import load_raw_sample

    raw, _ = load_raw_sample()
    vectors = astroclr.load(dino_run.dir, device="cpu").embed(raw[:64])
    stored = np.asarray(Table.read(dino_run.dir / "embeddings.fits")["representation"])
    np.testing.assert_allclose(vectors, stored, rtol=1e-4, atol=1e-5)


def test_resume_with_another_method_is_refused(dino_run):
    with pytest.raises(AstroclrError, match=r"train.method = 'dino', not 'byol'"):
        astroclr.run(resume=dino_run.dir, method="byol", progress=False)
