"""Downloading frames from a local HTTP server that misbehaves: drops, truncation, errors."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from astropy.table import Table

from astroclr.plugin.specs import AstroclrError
from astroclr_sdss.download import (
    DownloadError,
    FrameJob,
    download_frames,
    fetch,
    frame_jobs,
    verify_fits,
)
from astroclr_sdss.synthetic import write_frames

TEMPLATE = "{base_url}/{release}/{rerun}/{run}/{camcol}/frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2"


class FaultyHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``root``; ``faults[path]`` is a list of actions used up one per request."""

    root: Path
    faults: dict[str, list[str]]
    log: list[tuple[str, str | None]]
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        with self.lock:
            self.log.append((self.path, self.headers.get("Range")))
            actions = self.faults.get(self.path, [])
            action = actions.pop(0) if actions else "ok"
        file = self.root / self.path.lstrip("/")
        if action == "500":
            self.send_error(500, "overloaded")
            return
        if not file.is_file():
            self.send_error(404, "not found")
            return
        body = file.read_bytes()
        if action == "drop":
            self.close_connection = True
            self.connection.shutdown(2)  # no response at all
            return
        if action == "garbage":
            body = b"\0" * len(body)
        start = 0
        rng = self.headers.get("Range")
        if rng and action != "norange":
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if action == "truncate":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(payload)


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "sas"
    handler = type("H", (FaultyHandler,), {"root": root, "faults": {}, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _publish(root: Path, fields=(213, 214), bands=("g", "r")) -> Table:
    """Synthetic frames laid out like the SAS (<release>/<rerun>/<run>/<camcol>/) and a catalogue."""
    rows = []
    for field in fields:
        folder = root / "dr17" / "301" / "3918" / "3"
        ra, dec = 150.0 + 0.1 * (field - 213), 2.0
        write_frames(folder, [ra], [dec], bands=bands, field=field, shape=(120, 160))
        rows += [(field * 10 + k, ra, dec, 3918, 3, field) for k in range(2)]  # 2 objects/frame
    return Table(rows=rows, names=("objid", "ra", "dec", "run", "camcol", "field"))


def test_frame_jobs_from_catalogue():
    cat = Table({"RUN": [3918, 3918, 756], "camCol": [3, 3, 1], "field": [213, 213, 42]})
    jobs = frame_jobs(cat, ["g", "r"], "dr17")
    assert [j.filename for j in jobs] == [
        "frame-g-000756-1-0042.fits.bz2", "frame-r-000756-1-0042.fits.bz2",
        "frame-g-003918-3-0213.fits.bz2", "frame-r-003918-3-0213.fits.bz2"]
    assert jobs[0].url == ("https://data.sdss.org/sas/dr17/eboss/photoObj/frames/301/756/1/"
                           "frame-g-000756-1-0042.fits.bz2")
    assert "/dr12/boss/photoObj/" in frame_jobs(cat, ["g"], "DR12")[0].url
    with pytest.raises(AstroclrError, match="no column 'field'.*run, camcol and field"):
        frame_jobs(Table({"run": [1], "camcol": [1]}), ["g"])
    with pytest.raises(AstroclrError, match="release 'dr3' unknown"):
        frame_jobs(cat, ["g"], "dr3")


def test_download_with_faults_then_resume(server, tmp_path):
    handler, url = server
    cat = _publish(handler.root)
    jobs = frame_jobs(cat, ["g", "r"], "dr17", url, TEMPLATE)
    assert len(jobs) == 4
    paths = {j.filename: "/" + j.url.split("/", 3)[3] for j in jobs}
    names = sorted(paths)
    handler.faults.update({
        paths[names[0]]: ["drop", "500"],           # dropped, then a server error, then fine
        paths[names[1]]: ["truncate"],              # half the file, then resumed with Range
        paths[names[2]]: ["garbage"],               # right size, not FITS: refetched whole
        paths[names[3]]: ["truncate", "norange"],   # resume refused: starts over
    })
    out = tmp_path / "frames"
    summary = download_frames(jobs, out, workers=3, retries=3, backoff=0.01, timeout=5,
                              progress=False)
    assert summary["downloaded"] == 4 and summary["failed"] == []
    for name in names:
        src = handler.root / paths[name].lstrip("/")
        assert (out / name).read_bytes() == src.read_bytes()
    assert not list(out.glob("*.part"))
    tries = {name: sum(p == paths[name] for p, _ in handler.log) for name in names}
    assert tries == {names[0]: 3, names[1]: 2, names[2]: 2, names[3]: 2}
    ranged = [r for p, r in handler.log if p == paths[names[1]]]
    assert ranged[0] is None and ranged[1] is not None and ranged[1].startswith("bytes=")
    # a rerun fetches nothing
    before = len(handler.log)
    again = download_frames(jobs, out, workers=2, retries=0, progress=False)
    assert again["present"] == 4 and again["downloaded"] == 0 and len(handler.log) == before
    # and the frames feed the frames input
    from astroclr.plugin.registry import Registry
    from astroclr.plugin.specs import validate_params

    cat.write(tmp_path / "cat.fits")
    spec = Registry().get("dataset", "sdss")
    g = spec.load(**validate_params(spec.all_params, {
        "input": "frames", "path": str(out), "catalog": str(tmp_path / "cat.fits"),
        "id_column": "objid", "bands": ["g", "r"], "size": 32}, "d"))
    assert len(g) == 4


def test_failures_are_reported_not_raised(server, tmp_path):
    handler, url = server
    _publish(handler.root, fields=(213,), bands=("g",))
    good = frame_jobs(Table({"run": [3918], "camcol": [3], "field": [213]}), ["g"], "dr17", url,
                      TEMPLATE)[0]
    missing = FrameJob("frame-g-003918-3-0999.fits.bz2", good.url.replace("0213", "0999"))
    flaky = "/" + good.url.split("/", 3)[3]
    handler.faults[flaky] = ["drop", "drop", "drop"]
    slept: list[float] = []
    with pytest.raises(DownloadError, match="failed after 3 tries"):
        fetch(good, tmp_path, retries=2, backoff=0.5, timeout=5, sleep=slept.append)
    assert slept == [0.5, 1.0]  # exponential back-off
    assert not (tmp_path / good.filename).exists()
    summary = download_frames([good, missing], tmp_path / "o", retries=1, backoff=0.01,
                              progress=False)
    assert summary["downloaded"] == 1
    assert summary["failed"][0][0] == missing.filename and "HTTP 404" in summary["failed"][0][1]


def test_a_leftover_truncated_part_is_not_complete(server, tmp_path):
    handler, url = server
    _publish(handler.root, fields=(213,), bands=("g",))
    job = frame_jobs(Table({"run": [3918], "camcol": [3], "field": [213]}), ["g"], "dr17", url,
                     TEMPLATE)[0]
    src = (handler.root / job.url.split("/", 3)[3]).read_bytes()
    (tmp_path / (job.filename + ".part")).write_bytes(src[:100])  # an interrupted earlier run
    with pytest.raises(DownloadError, match="not a valid FITS"):
        verify_fits(tmp_path / (job.filename + ".part"))
    assert fetch(job, tmp_path, retries=0) == "downloaded"
    assert (tmp_path / job.filename).read_bytes() == src
    ranged = [r for _, r in handler.log]
    assert ranged == ["bytes=100-"]  # continued, not restarted


def test_cli_download(server, tmp_path):
    from typer.testing import CliRunner

    from astroclr.plugin.registry import Registry

    handler, url = server
    cat = _publish(handler.root, fields=(213,), bands=("g", "r", "i"))
    cat.write(tmp_path / "cat.csv")
    app = Registry().get("command", "sdss").make_app()
    runner = CliRunner()
    args = ["download", "--catalog", str(tmp_path / "cat.csv"), "--out", str(tmp_path / "f"),
            "--base-url", url, "--url-template", TEMPLATE, "--no-progress", "--backoff", "0.01"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 frames: 3 downloaded" in res.output
    assert len(list((tmp_path / "f").glob("frame-*.fits.bz2"))) == 3
    Table({"objid": [1]}).write(tmp_path / "bad.csv")
    res = runner.invoke(app, ["download", "--catalog", str(tmp_path / "bad.csv"), "--out",
                              str(tmp_path / "f")])
    assert res.exit_code == 2 and "no column 'run'" in res.output
    assert "Traceback" not in res.output
