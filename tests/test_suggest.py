"""``astroclr suggest`` and ``load(run).suggest``: which galaxies to label next.

Cold (no labels) picks are representative and spread; warm (a labels file) picks are those the
probe is least sure of, spread, never already labelled. Checked on representations built to
have a known answer, then end to end on a tiny SDSS run (integer ids) and on a third-party
dataset with string ids and class names.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from test_classify import cli, one_error

import astroclr
from astroclr.api import DatasetSpec, Param, hookimpl
from astroclr.classify.suggest import cold_rows, unit, warm_rows

TINY = ["dataset.bin=4", "run.evaluators=[]", "train.max_steps=2", "train.threads=1"]


@pytest.fixture(scope="module")
def sdss_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("suggest") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False,
                 sets=["dataset.limit=60", *TINY])
    return out


class _Named:
    """A dataset plugin with string ids and named classes (registered while the module's
    fixture lives)."""

    @hookimpl
    def astroclr_datasets(self):
        yield DatasetSpec("named", "string ids, three named classes", _load_named,
                          params=(Param("n", int, 48, "galaxies", low=10),),
                          preprocessing={"bin": 1, "stretch": "linear", "softening": 1.0,
                                         "normalize": "minmax"})


NAMES = ("elliptical", "spiral", "merger")


def _load_named(n, bin, stretch, softening, normalize):
    from astroclr.api import Galaxies, Preprocessing, SurveyInfo

    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    yy, xx = np.mgrid[:16, :16] - 7.5
    width = (1.5 + 1.5 * labels)[:, None, None, None]
    raw = np.exp(-(xx ** 2 + yy ** 2)[None, None] / (2 * width ** 2)) * np.ones((1, 2, 1, 1))
    raw = (raw + 0.05 * rng.normal(size=(n, 2, 16, 16))).astype(np.float32)
    prep = Preprocessing(bin=bin, stretch=stretch, softening=softening, normalize=normalize)
    survey = SurveyInfo.create("named", ("g", "r"), pixel_scale=0.3, psf_fwhm={"g": 1.2, "r": 1.1})
    return Galaxies.from_arrays(prep.apply(raw), survey, ids=[f"NG-{i:03d}" for i in range(n)],
                                labels=labels, preprocessing=prep, raw_size=16, label_names=NAMES)


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    from astroclr.plugin.registry import get_registry

    out = tmp_path_factory.mktemp("named") / "run"
    with get_registry().registered(_Named(), "named"):
        astroclr.run(out=out, dataset="named", backbone="smallcnn", epochs=1, progress=False,
                     sets=[*TINY[1:], "augment.pipeline=['rotate_flip']"])
        yield out


def _labels_csv(path, ids, labels):
    path.write_text("id,label\n" + "".join(f"{i},{lab}\n" for i, lab in zip(ids, labels)))
    return path


# -- the choice, on representations with a known answer ------------------------------------------

def _blobs(rng):
    """Three clusters of 200, 100 and 50 galaxies, and 20 outliers scattered far from them and
    from each other (the last rows). k-means without density weights gives 2-5 of 20 picks to
    outliers here."""
    centres = np.eye(8)[:3] * 6
    parts = [c + rng.normal(size=(m, 8)) for c, m in zip(centres, (200, 100, 50))]
    far = rng.normal(size=(20, 8))
    far = 40 * far / np.linalg.norm(far, axis=1, keepdims=True)
    return np.concatenate([*parts, far]).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_cold_picks_cover_every_cluster_and_no_outlier(seed):
    reps = _blobs(np.random.default_rng(seed))
    for n in (3, 20):
        rows, scores = cold_rows(reps, n, seed=seed)
        assert rows.max() < 350, (n, rows)
        per_cluster = np.bincount(np.searchsorted([200, 300, 350], rows, side="right"))
        assert len(per_cluster) == 3 and per_cluster.min() >= 1 and len(set(rows)) == n
        assert list(scores) == sorted(scores, reverse=True)


def test_cold_picks_never_include_excluded_galaxies(rng):
    rows, _ = cold_rows(_blobs(rng), 20, seed=0, exclude=np.arange(0, 200))
    assert len(set(rows)) == 20 and rows.min() >= 200


def test_warm_picks_sit_on_the_class_boundary_and_skip_labelled_galaxies(rng):
    x = rng.uniform(-1, 1, size=(600, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    labelled = rng.choice(600, 60, replace=False)
    rows, scores, guesses = warm_rows(x, labelled, y[labelled], 10, strategy="uncertainty")
    assert not set(rows) & set(labelled)
    assert np.abs(x[rows, 0]).max() < np.median(np.abs(x[:, 0]))
    assert set(guesses) <= {0, 1} and (np.diff(scores) <= 0).all()


def test_diverse_warm_picks_are_spread_where_uncertainty_alone_clumps(rng):
    x = rng.uniform(-1, 1, size=(2000, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    labelled = rng.choice(2000, 80, replace=False)

    def closest_pair(rows):
        u = unit(x)[rows]
        d = ((u[:, None] - u[None]) ** 2).sum(-1) + np.eye(len(rows)) * 9
        return d.min()

    plain, _, _ = warm_rows(x, labelled, y[labelled], 20, strategy="uncertainty")
    diverse, _, _ = warm_rows(x, labelled, y[labelled], 20, strategy="diverse")
    assert not set(diverse) & set(labelled) and len(set(diverse)) == 20
    assert closest_pair(diverse) > closest_pair(plain)
    assert np.abs(x[diverse, 0]).mean() < 0.5  # still near the boundary (|x0| averages 0.5)


# -- the command, on a run ------------------------------------------------------------------------

def test_cold_suggest_writes_ids_reasons_scores_and_a_montage(sdss_run, tmp_path, capsys):
    out = tmp_path / "picks.csv"
    code, stdout, err = cli(["suggest", str(sdss_run), "--n", "7", "--out", str(out)], capsys)
    assert code == 0, err
    picks = Table.read(out, format="ascii.csv")
    assert picks.colnames == ["id", "rank", "reason", "score", "probe_class"]
    run_ids = set(Table.read(sdss_run / "embeddings.fits")["id"])
    assert len(set(picks["id"])) == 7 and set(picks["id"]) <= run_ids
    assert set(picks["reason"]) == {"representative"} and list(picks["rank"]) == list(range(1, 8))
    assert (tmp_path / "picks.png").stat().st_size > 1000 and "montage:" in stdout


def test_warm_suggest_leaves_out_the_labelled_and_guesses_a_class(sdss_run, tmp_path, capsys):
    emb = Table.read(sdss_run / "embeddings.fits")
    labelled = [i for i, lab in zip(emb["id"], emb["label"]) if lab >= 0][:12]
    truth = {i: lab for i, lab in zip(emb["id"], emb["label"])}
    labels = _labels_csv(tmp_path / "l.csv", labelled, [("early", "late")[truth[i]]
                                                        for i in labelled])
    out = tmp_path / "next.csv"
    code, _, err = cli(["suggest", str(sdss_run), "--n", "9", "--labels-file", str(labels),
                        "--out", str(out)], capsys)
    assert code == 0, err
    picks = Table.read(out, format="ascii.csv")
    assert len(picks) == 9 and not set(picks["id"]) & set(labelled)
    assert set(picks["reason"]) == {"uncertain + diverse"}
    assert set(picks["probe_class"]) <= {"early", "late"}


def test_python_api_gives_the_commands_picks(sdss_run, tmp_path, capsys):
    out = tmp_path / "picks.csv"
    assert cli(["suggest", str(sdss_run), "--n", "5", "--out", str(out), "--seed", "3"],
               capsys)[0] == 0
    table = astroclr.load(sdss_run, device="cpu").suggest(5, seed=3)
    assert list(table["id"]) == list(Table.read(out, format="ascii.csv")["id"])


def test_a_batch_of_one_and_of_every_unlabelled_galaxy(sdss_run, tmp_path):
    model = astroclr.load(sdss_run, device="cpu")
    assert len(model.suggest(1)) == 1
    emb = Table.read(sdss_run / "embeddings.fits")
    first = list(emb["id"][:10])
    labels = _labels_csv(tmp_path / "l.csv", first, [int(v) % 2 for v in range(10)])
    rest = model.suggest(len(emb) - 10, labels=labels)
    assert set(rest["id"]) == set(emb["id"][10:])


def test_string_ids_and_class_names_of_a_plugin_dataset(named_run, tmp_path, capsys):
    cold = tmp_path / "cold.csv"
    code, _, err = cli(["suggest", str(named_run), "-n", "6", "--out", str(cold)], capsys)
    assert code == 0, err
    picks = Table.read(cold, format="ascii.csv")
    assert all(str(i).startswith("NG-") for i in picks["id"])
    rows = [int(str(i)[3:]) for i in picks["id"]]
    labels = _labels_csv(tmp_path / "l.csv", picks["id"], [NAMES[r % 3] for r in rows])
    warm = tmp_path / "warm.csv"
    code, _, err = cli(["suggest", str(named_run), "-n", "6", "--labels-file", str(labels),
                        "--out", str(warm)], capsys)
    assert code == 0, err
    again = Table.read(warm, format="ascii.csv")
    assert not set(again["id"]) & set(picks["id"]) and set(again["probe_class"]) <= set(NAMES)


@pytest.mark.parametrize("args, words", [
    (["--n", "61"], ["--n 61", "only 60"]),
    (["--n", "3", "--strategy", "greedy"], ["--strategy 'greedy'", "diverse"]),
])
def test_bad_requests_are_one_line_errors(sdss_run, tmp_path, capsys, args, words):
    out = tmp_path / "picks.csv"
    code, _, err = cli(["suggest", str(sdss_run), *args, "--out", str(out)], capsys)
    line = one_error(err)
    assert code == 2 and all(w in line for w in words), line
    assert not out.exists()


def test_an_output_that_is_not_csv_is_refused(sdss_run, tmp_path, capsys):
    code, _, err = cli(["suggest", str(sdss_run), "--n", "3", "--out", str(tmp_path / "p.fits")],
                       capsys)
    assert code == 2 and ".csv" in one_error(err)


def test_a_labels_file_with_an_unknown_id_is_a_one_line_error(sdss_run, tmp_path, capsys):
    labels = _labels_csv(tmp_path / "l.csv", [123], ["early"])
    out = tmp_path / "p.csv"
    code, _, err = cli(["suggest", str(sdss_run), "--n", "3", "--labels-file", str(labels),
                        "--out", str(out)], capsys)
    line = one_error(err)
    assert code == 2 and str(labels) in line and "'123'" in line and not out.exists()
