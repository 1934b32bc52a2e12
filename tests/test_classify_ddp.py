"""``embed`` and ``predict`` scale out like ``run``: Lightning's predict loop on 2 CPU processes
(gloo), each writing its own shard, merged by row with every galaxy exactly once; and an
interrupted inference resumes without redoing the batches already written."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from astropy.table import Table

import astroclr
from astroclr.plugin.specs import AstroclrError
from astroclr.train import infer as inf

LIMIT = 60
SETS = [f"dataset.limit={LIMIT}", "dataset.bin=4", "run.evaluators=[]", "train.max_steps=2",
        "train.threads=1"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("cddp")
    astroclr.run(out=root / "run", backbone="smallcnn", epochs=1, progress=False, sets=SETS)
    astroclr.load(root / "run", device="cpu").finetune(root / "clf", mode="probe", labels=40)
    return root


def _astroclr(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    for var in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_PORT"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *args], capture_output=True,
                          text=True, timeout=400, env=env)


DDP = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "-q",
       "--set", "train.embed_batch_size=8"]


def test_two_process_embed_equals_one_process(made, tmp_path):
    out = tmp_path / "emb.fits"
    r = _astroclr(["embed", str(made / "run"), "--out", str(out), *DDP])
    assert r.returncode == 0, r.stderr[-3000:]
    got, stored = Table.read(out), Table.read(made / "run" / "embeddings.fits")
    assert list(got["id"]) == list(stored["id"])  # every galaxy once, in the dataset's order
    np.testing.assert_allclose(got["representation"], stored["representation"], atol=1e-5)
    assert not (tmp_path / ".emb.fits.parts").exists()


def test_two_process_predict_equals_one_process(made, tmp_path):
    out = tmp_path / "pred.fits"
    r = _astroclr(["predict", str(made / "clf"), "--out", str(out), *DDP])
    assert r.returncode == 0, r.stderr[-3000:]
    from astroclr.classify.apply import predict_dataset

    # the same batches as the two processes: oneDNN picks its convolution algorithm by the batch
    # size, and with the default batch the probabilities differed by up to 3.5e-5
    single = predict_dataset(made / "clf", tmp_path / "single.fits", sets=DDP[-1:],
                             accelerator="cpu")
    a, b = Table.read(out), Table.read(single)
    assert list(a["id"]) == list(b["id"]) and len(a) == LIMIT
    np.testing.assert_allclose(a["prob_late"], b["prob_late"], atol=1e-5)
    np.testing.assert_array_equal(a["pred_label"], b["pred_label"])


def test_a_two_process_run_embeds_its_galaxies_in_both_processes(tmp_path):
    """The run's own embedding is the engine of embed and predict: each process embeds its
    share (60 galaxies, a batch of 30 each, though 60 fit the default batch of 512), rank 0
    merges, and the table equals a one-process embed of the saved encoder."""
    from astroclr.classify.apply import embed_dataset

    out = tmp_path / "run2"
    r = _astroclr(["run", "--backbone", "smallcnn", "--out", str(out), "--accelerator", "cpu",
                   "--devices", "2", "--strategy", "ddp", "-q", "--epochs", "1",
                   *[a for s in SETS for a in ("--set", s)]])
    assert r.returncode == 0, r.stderr[-3000:]
    table = Table.read(out / "embeddings.fits")
    assert len(table) == LIMIT and len(set(table["id"])) == LIMIT
    assert not (out / "checkpoints" / "embedding").exists()  # removed once the table holds them
    single = Table.read(embed_dataset(out, tmp_path / "single.fits", accelerator="cpu",
                                      sets=["train.embed_batch_size=30"]))
    assert list(single["id"]) == list(table["id"])
    np.testing.assert_allclose(table["representation"], single["representation"], atol=1e-5)


# -- shards, merging and resuming, in one process -----------------------------------------------

class Counting(torch.nn.Module):
    """A fixed linear map of the mean of each band; counts images it saw; can fail on demand."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        torch.nn.init.constant_(self.fc.weight, 0.5)
        torch.nn.init.constant_(self.fc.bias, 0.1)
        self.seen, self.fail_after, self.batches = 0, fail_after, 0

    def forward(self, x):
        if x.shape[0] > 1:  # not the one-image probe of the output size
            self.batches += 1
            if self.fail_after is not None and self.batches > self.fail_after:
                raise RuntimeError("simulated crash")
            self.seen += x.shape[0]
        return self.fc(x.mean((2, 3)))


def _train_options():
    from astroclr import config as cfgmod

    return cfgmod.resolve({"run": {"evaluators": []}, "train": {"accelerator": "cpu"}},
                          astroclr_registry()).train


def astroclr_registry():
    from astroclr.plugin.registry import get_registry

    return get_registry()


def test_interrupted_inference_resumes_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(inf, "FLUSH_EVERY", 1)
    images = np.random.default_rng(0).random((50, 3, 4, 4), dtype=np.float32)
    ids = np.arange(1000, 1050)
    crashing = Counting(fail_after=3)
    with pytest.raises(AstroclrError, match="simulated crash"):
        inf.infer(crashing, images, ids, tmp_path / "work", _train_options(), 8,
                  fingerprint="m")
    fresh = Counting()
    out = inf.infer(fresh, images, ids, tmp_path / "work", _train_options(), 8, fingerprint="m")
    assert fresh.seen == 50 - 3 * 8  # only the batches the crash left undone
    expected = Counting()(torch.from_numpy(images)).detach().numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_another_model_does_not_reuse_a_shard(tmp_path):
    images = np.random.default_rng(0).random((20, 3, 4, 4), dtype=np.float32)
    ids = np.arange(20)
    inf.infer(Counting(), images, ids, tmp_path / "w", _train_options(), 8, fingerprint="a")
    other = Counting()
    inf.infer(other, images, ids, tmp_path / "w", _train_options(), 8, fingerprint="b")
    assert other.seen == 20


def test_merge_finds_galaxies_lost_or_written_twice(tmp_path):
    key = {"k": 1}
    for rank, rows in enumerate([[0, 1, 2], [2, 4]]):  # row 3 lost, row 2 twice
        shard = inf.Shard(tmp_path, rank, 2)
        np.save(shard.rows, np.array(rows, dtype=np.int64))
        np.save(shard.values, np.zeros((len(rows), 2), dtype=np.float32))
        from astroclr.files import write_json

        write_json(shard.progress, {"key": key, "complete": True})
    with pytest.raises(AstroclrError, match="1 galaxies missing and 1 written twice"):
        inf.merge_shards(tmp_path, 5, 2, 2, key)
