"""The report's training curves: loss and learning rate per step from the run's CSV log."""

from __future__ import annotations

import astroclr
from astroclr.session.curves import plot_training_curves, read_training_log
from astroclr.session.report import write_report

LOG = """epoch,loss_epoch,loss_step,lr-AdamW,step
0,,,0.001,0
0,,4.5,,0
0,,,0.002,1
0,,4.25,,1
0,4.3,,,1
0,,4.0,,2
"""


def test_loss_and_learning_rate_are_read_per_step(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_text(LOG)
    series = read_training_log(log)
    assert series["loss"] == [(0, 4.5), (1, 4.25), (2, 4.0)]  # loss_step; loss_epoch left out
    assert series["lr"] == [(0, 0.001), (1, 0.002)]


def test_a_missing_or_empty_log_draws_nothing(tmp_path):
    assert plot_training_curves(tmp_path / "none.csv", tmp_path / "c.png") is None
    (tmp_path / "empty.csv").write_text("epoch,step\n")
    assert plot_training_curves(tmp_path / "empty.csv", tmp_path / "c.png") is None
    assert not (tmp_path / "c.png").exists()
    md, _ = write_report(tmp_path, {"title": "t"}, {})
    assert "## Training" not in md.read_text()


def test_the_report_of_a_few_step_run_shows_its_training_curves(tmp_path):
    run = astroclr.run(out=tmp_path / "run", backbone="smallcnn", batch_size=16, max_steps=4,
                       epochs=1, progress=False, evaluators=[],
                       sets=("dataset.limit=64", "dataset.bin=4", "backbone.width=8",
                             "train.time_budget=''", "train.accelerator=cpu"))
    series = read_training_log(run.dir / "logs" / "metrics.csv")
    assert [s for s, _ in series["loss"]] == [0, 1, 2, 3] and len(series["lr"]) == 4
    figure = run.dir / "figures" / "training_curves.png"
    assert figure.is_file() and figure.stat().st_size > 1000
    text = (run.dir / "report.md").read_text()
    assert "## Training" in text and "](figures/training_curves.png)" in text
    assert 'alt="training curves" src="data:image/png;base64,' in (run.dir / "report.html").read_text()
