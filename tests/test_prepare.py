"""astroclr.data.prepared: writing (parallel, resumable, atomic), the skip report, reading back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astroclr import hookimpl
from astroclr.data.prepare import prepare_dataset
from astroclr.data.prepared import open_prepared
from astroclr.plugin.specs import AstroclrError, DatasetSpec, Param, validate_params
from astroclr_sdss.synthetic import cutout_header, gaussian_image

N_GOOD = 37


@pytest.fixture(scope="module")
def cutouts(tmp_path_factory):
    """37 good galaxies (per-band FITS files) and 3 bad ones, with a catalogue."""
    from astropy.table import Table

    folder = tmp_path_factory.mktemp("cutouts")
    rng = np.random.default_rng(3)
    ids = []
    for k in range(N_GOOD + 3):
        gid = 1000 + k
        ids.append(gid)
        x, y = rng.uniform(28, 36, 2)
        for b in "gri":
            data = gaussian_image((64, 64), [x], [y], [rng.uniform(50, 500)], sky_noise=0.1, rng=rng)
            if k == N_GOOD:
                data[:] = np.nan  # all-NaN cutout
            if k == N_GOOD + 1 and b == "r":
                continue  # missing band file
            fits.PrimaryHDU(data, cutout_header(b, 150.0, 2.0, 64)).writeto(folder / f"{gid}_{b}.fits")
    ids.append(99)  # in the catalogue, no files at all
    Table({"id": ids, "z": [0.05] * (len(ids) - 2) + [0.3, 0.1]}).write(folder.parent / "cat.csv",
                                                                        overwrite=True)
    return folder


def _params(spec, folder, **more):
    return validate_params(spec.all_params, {"input": "fits_cutouts", "path": str(folder),
                                         "catalog": str(folder.parent / "cat.csv"), "z_column": "z",
                                         "z_max": 0.15, "chunk_size": 8, **more}, "dataset.sdss")


def test_prepare_parallel_roundtrip_and_skip_report(registry, cutouts, tmp_path):
    spec = registry.get("dataset", "sdss")
    out = tmp_path / "prep"
    summary = prepare_dataset(registry, "sdss", _params(spec, cutouts), out, workers=2,
                              progress=False)
    assert summary["complete"] and summary["kept"] == N_GOOD
    assert summary["skipped"] == {"missing_file": 2, "mostly_invalid": 1, "redshift_cut": 1}
    assert summary["candidates"] == N_GOOD + 4 and summary["galaxies_per_s"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["catalog.fits", "images.npy", "meta.json",
                                                     "skipped.csv"]
    g = open_prepared(out)
    assert isinstance(g.images, np.memmap) and g.images.mode == "r"
    assert g.images.shape == (N_GOOD, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = spec.load(**_params(spec, cutouts))
    np.testing.assert_array_equal(np.asarray(g.images), mem.images)
    assert g.ids.tolist() == mem.ids.tolist()
    assert g.survey.to_dict() == mem.survey.to_dict()
    assert g.preprocessing == mem.preprocessing
    lines = (out / "skipped.csv").read_text().splitlines()
    assert lines[0] == "id,row,reason,detail" and len(lines) == 5
    assert any(line.startswith(f"{1000 + N_GOOD + 1},") and "1038_r.fits" in line for line in lines)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["count"] == N_GOOD and meta["skipped_total"] == 4
    # the same directory again: already complete, nothing redone
    again = prepare_dataset(registry, "sdss", _params(spec, cutouts), out, progress=False)
    assert again["already_complete"] and again["kept"] == N_GOOD
    # and as a dataset input
    p = validate_params(spec.all_params, {"input": "prepared", "path": str(out), "limit": 5}, "d")
    small = spec.load(**p)
    assert len(small) == 5 and isinstance(small.images, np.memmap)


def test_prepare_resumes_after_a_chunk_limit(registry, cutouts, tmp_path):
    spec = registry.get("dataset", "sdss")
    out = tmp_path / "prep"
    first = prepare_dataset(registry, "sdss", _params(spec, cutouts), out, workers=1,
                            progress=False, max_chunks=2)
    assert not first["complete"] and first["chunks_done"] == 2 and first["chunks_total"] == 5
    assert not (out / "meta.json").exists()  # nothing looks complete
    with pytest.raises(AstroclrError, match="no meta.json.*interrupted prepare"):
        open_prepared(out)
    # Mark the staged images of the finished chunks: a resume that redid them would erase this.
    staged = np.load(out / ".partial" / "rows.npy", mmap_mode="r+")
    staged[:16] += 7.0
    staged.flush()
    del staged
    second = prepare_dataset(registry, "sdss", _params(spec, cutouts), out, workers=2,
                             progress=False)
    assert second["complete"] and second["chunks_resumed"] == 2 and second["kept"] == N_GOOD
    assert not (out / ".partial").exists()
    ref = tmp_path / "ref"
    prepare_dataset(registry, "sdss", _params(spec, cutouts), ref, workers=1, progress=False)
    got, want = np.load(out / "images.npy"), np.load(ref / "images.npy")
    # rows 0-15 of the catalogue are chunks 0-1 (all kept): marked, so not redone
    np.testing.assert_array_equal(got[:16], want[:16] + 7.0)
    np.testing.assert_array_equal(got[16:], want[16:])
    # other parameters cannot resume someone else's partial directory
    prepare_dataset(registry, "sdss", _params(spec, cutouts), tmp_path / "p2", progress=False,
                    max_chunks=1)
    with pytest.raises(AstroclrError, match="interrupted prepare with other inputs"):
        prepare_dataset(registry, "sdss", _params(spec, cutouts, bin=1), tmp_path / "p2",
                        progress=False)


SCRIPT = r'''
import sys, time
import numpy as np
from astropy.table import Table
from astroclr.data.galaxies import SurveyInfo
from astroclr.data.preprocess import Preprocessing
from astroclr.data.prepare import write_prepared
from astroclr.data.prepared import ChunkResult, PrepareSource

class Slow(PrepareSource):
    def __init__(self, delay):
        self.catalog = Table({"id": np.arange(60)})
        self.survey = SurveyInfo.create("toy", ["g"], 0.4, {"g": 1.0})
        self.preprocessing = Preprocessing(bin=1, normalize="none")
        self.image_shape = (1, 4, 4)
        self.fingerprint = {"toy": 1}
        self.delay = delay
    def read_chunk(self, a, b):
        time.sleep(self.delay)
        rows = np.arange(a, b)
        images = np.broadcast_to(rows[:, None, None, None], (b - a, 1, 4, 4)).astype(np.float32)
        return ChunkResult(images, rows)

s = write_prepared(Slow(float(sys.argv[2])), sys.argv[1], workers=1, progress=False, chunk_size=5)
print("DONE", s["chunks_resumed"], s["kept"])
'''


def test_prepare_resumes_after_being_killed(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SCRIPT)
    out = tmp_path / "prep"
    proc = subprocess.Popen([sys.executable, str(script), str(out), "0.2"])
    chunks = out / ".partial" / "chunks"
    deadline = time.time() + 30
    while time.time() < deadline and len(list(chunks.glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(chunks.glob("*.json")))
    assert 3 <= done < 12 and not (out / "meta.json").exists()
    res = subprocess.run([sys.executable, str(script), str(out), "0"], capture_output=True,
                         text=True, check=True)
    resumed, kept = map(int, res.stdout.split()[1:])
    assert resumed >= done and kept == 60
    g = open_prepared(out)
    np.testing.assert_array_equal(g.images[:, 0, 0, 0], np.arange(60))


class _Toy:
    """A dataset plugin without a prepare callable: the generic in-memory path."""

    @hookimpl
    def astroclr_datasets(self):
        def load(n):
            from astroclr.data.galaxies import Galaxies, SurveyInfo

            survey = SurveyInfo.create("toy", ["x", "y"], 1.0, {"x": 2.0, "y": 2.0})
            images = np.arange(n * 2 * 8 * 8, dtype=np.float32).reshape(n, 2, 8, 8)
            return Galaxies.from_arrays(images, survey, labels=np.arange(n) % 2,
                                        label_names=("a", "b"))

        yield DatasetSpec("toy", "toy", load, params=(Param("n", int, 10, "count"),))


def test_generic_dataset_without_prepare(tmp_path):
    from astroclr.plugin.registry import Registry

    reg = Registry()
    with reg.registered(_Toy(), "toy"):
        summary = prepare_dataset(reg, "toy", {"n": 7}, tmp_path / "t", progress=False)
    assert summary["kept"] == 7 and summary["skipped"] == {}
    g = open_prepared(tmp_path / "t")
    assert g.bands == ("x", "y") and g.label_names == ("a", "b")
    assert g.labels().tolist() == [0, 1, 0, 1, 0, 1, 0]
    np.testing.assert_array_equal(g.images[3], np.arange(7 * 128, dtype=np.float32).reshape(7, 2, 8, 8)[3])


def test_sample_prepares_too(registry, tmp_path):
    spec = registry.get("dataset", "sdss")
    s = prepare_dataset(registry, "sdss", {"limit": 30}, tmp_path / "s", progress=False)
    assert s["kept"] == 30
    g = open_prepared(tmp_path / "s")
    ref = spec.load(**validate_params(spec.all_params, {"limit": 30}, "d"))
    np.testing.assert_array_equal(np.asarray(g.images), ref.images)
    assert g.label_names == ("early", "late")


def test_corrupt_or_foreign_directories(registry, tmp_path):
    from astroclr.plugin.registry import Registry

    with pytest.raises(AstroclrError, match="no such directory"):
        open_prepared(tmp_path / "nothing")
    good = tmp_path / "good"
    toy = Registry()
    toy.register(_Toy(), "toy")
    prepare_dataset(toy, "toy", {"n": 10}, good, progress=False)
    open_prepared(good)
    meta = json.loads((good / "meta.json").read_text())
    meta["count"] = 11
    (good / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(AstroclrError, match="corrupt"):
        open_prepared(good)
    (good / "meta.json").write_text("{ not json")
    with pytest.raises(AstroclrError, match="meta.json is unreadable"):
        open_prepared(good)
    (good / "meta.json").unlink()
    with pytest.raises(AstroclrError, match="no meta.json"):
        open_prepared(good)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(AstroclrError, match="not empty"):
        prepare_dataset(toy, "toy", {"n": 10}, other, progress=False)
    with pytest.raises(AstroclrError, match="prepared already"):
        prepare_dataset(registry, "sdss", {"input": "prepared", "path": str(good)},
                        tmp_path / "x", progress=False)


def test_interrupted_finalising_completes_on_rerun(registry, cutouts, tmp_path, monkeypatch):
    """Killed between moving the files and moving meta.json: the rerun finishes, redoing nothing."""
    import astroclr.data.prepare as prepare

    spec = registry.get("dataset", "sdss")
    out = tmp_path / "prep"
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == out / "meta.json":
            raise KeyboardInterrupt  # as if killed right here
        return real_replace(src, dst)

    monkeypatch.setattr(prepare.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(registry, "sdss", _params(spec, cutouts), out, workers=1, progress=False)
    monkeypatch.setattr(prepare.os, "replace", real_replace)
    assert (out / "images.npy").exists() and not (out / "meta.json").exists()
    with pytest.raises(AstroclrError, match="no meta.json"):
        open_prepared(out)
    summary = prepare_dataset(registry, "sdss", _params(spec, cutouts), out, progress=False)
    assert summary["complete"] and summary["kept"] == N_GOOD and not (out / ".partial").exists()
    ref = tmp_path / "ref"
    prepare_dataset(registry, "sdss", _params(spec, cutouts), ref, workers=1, progress=False)
    np.testing.assert_array_equal(np.load(out / "images.npy"), np.load(ref / "images.npy"))
    # a complete directory is not silently reused for other parameters
    with pytest.raises(AstroclrError, match="already holds a prepared dataset made from other"):
        prepare_dataset(registry, "sdss", _params(spec, cutouts, stretch="asinh"), out,
                        progress=False)
