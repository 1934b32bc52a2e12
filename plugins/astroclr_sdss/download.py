"""Downloading the SDSS imaging frames that a catalogue's galaxies lie on.

Frame file names follow from each object's ``run``, ``camcol`` and ``field`` (columns of every
SDSS photometric catalogue, e.g. PhotoObj / SpecPhoto from CasJobs); the URL follows the
Science Archive Server's layout, configurable by template and data release.

Robust to a flaky network: parallel threads, each file written to ``<name>.part`` and renamed
only after it is verified (size against Content-Length, then opened as FITS by astropy with
every HDU read), retries with exponential back-off, an interrupted ``.part`` continued with an
HTTP Range request where the server allows it, and files already complete skipped, so a rerun
resumes. Only the standard library's urllib is used.
"""

from __future__ import annotations

import concurrent.futures as cf
import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from astroclr.api import AstroclrError

DEFAULT_BASE_URL = "https://data.sdss.org/sas"
#: ``{survey}`` is boss for DR8-DR12 and eboss from DR13 (where the SAS keeps photoObj frames)
DEFAULT_URL_TEMPLATE = ("{base_url}/{release}/{survey}/photoObj/frames/{rerun}/{run}/{camcol}/"
                        "frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2")
RELEASES = tuple(f"dr{n}" for n in range(8, 18))
BLOCK = 1 << 16


class DownloadError(Exception):
    """One file could not be fetched (reported per file; the others go on)."""


class _Permanent(DownloadError):
    """The server said no (404, 403 ...): retrying will not help."""


@dataclass(frozen=True)
class FrameJob:
    """One frame to fetch."""

    filename: str
    url: str


def survey_dir(release: str) -> str:
    number = int(release.lower().lstrip("dr"))
    return "boss" if number <= 12 else "eboss"


def frame_jobs(catalog: Any, bands: Sequence[str], release: str = "dr17",
               base_url: str = DEFAULT_BASE_URL, url_template: str = DEFAULT_URL_TEMPLATE,
               rerun: int = 301, columns: tuple[str, str, str] = ("run", "camcol", "field"),
               catalog_path: str = "catalogue") -> list[FrameJob]:
    """The distinct frames (× bands) the catalogue's objects lie on."""
    release = release.lower()
    if release not in RELEASES:
        raise AstroclrError(f"sdss download: release {release!r} unknown; one of "
                            f"{', '.join(RELEASES)}")
    values = []
    lower = {c.lower(): c for c in catalog.colnames}
    for name in columns:
        col = lower.get(name.lower())
        if col is None:
            raise AstroclrError(
                f"{catalog_path}: no column {name!r} (columns: {', '.join(catalog.colnames)}); the "
                f"frame of each object follows from its run, camcol and field, which SDSS "
                f"catalogues (PhotoObj, SpecPhoto) carry: add them or name them with "
                f"--run-column/--camcol-column/--field-column")
        v = catalog[col]
        if hasattr(v, "mask") and np.any(v.mask):
            row = int(np.flatnonzero(v.mask)[0])
            raise AstroclrError(f"{catalog_path}: row {row} has no {name}")
        values.append(np.asarray(v).astype(np.int64))
    triples = sorted(set(zip(*(v.tolist() for v in values))))
    jobs = []
    for run, camcol, field in triples:
        for band in bands:
            url = url_template.format(base_url=base_url.rstrip("/"), release=release,
                                      survey=survey_dir(release), rerun=rerun, run=run,
                                      camcol=camcol, field=field, band=band)
            jobs.append(FrameJob(url.rsplit("/", 1)[-1], url))
    return jobs


def verify_fits(path: Path) -> None:
    """Raise DownloadError unless ``path`` opens as FITS and every HDU's data reads in full."""
    from astropy.io import fits

    from astroclr_sdss.fits_cutouts import truncation_is_error

    try:
        with truncation_is_error(), fits.open(path, memmap=False) as hdul:
            if len(hdul) == 0:
                raise ValueError("no HDU")
            for hdu in hdul:
                _ = hdu.data  # reads (and decompresses) every byte
    except Exception as exc:
        raise DownloadError(f"not a valid FITS file ({type(exc).__name__}: {exc})") from None


def _fetch_to_part(url: str, part: Path, timeout: float) -> None:
    """Fetch ``url`` into ``part``, continuing an existing partial file where the server allows."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "astroclr-sdss-download"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked beyond the end: the part file is wrong, restart
            part.unlink()
            raise DownloadError("range not satisfiable; restarting") from None
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise _Permanent(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    with response:
        length = response.headers.get("Content-Length")
        if have and response.status == 206:
            mode, expected = "ab", (have + int(length)) if length is not None else None
        else:
            mode, expected = "wb", int(length) if length is not None else None
        with open(part, mode) as fh:
            while True:
                block = response.read(BLOCK)
                if not block:
                    break
                fh.write(block)
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise DownloadError(f"truncated: {size} of {expected} bytes")


def fetch(job: FrameJob, out_dir: Path, retries: int = 4, backoff: float = 1.0,
          timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> str:
    """Fetch one frame; returns ``"downloaded"`` or ``"present"``; raises DownloadError."""
    final = out_dir / job.filename
    if final.exists():
        return "present"  # only verified files ever get the final name
    part = out_dir / (job.filename + ".part")
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            _fetch_to_part(job.url, part, timeout)
            try:
                verify_fits(part)
            except DownloadError:
                part.unlink(missing_ok=True)  # corrupt content: the next try starts afresh
                raise
            os.replace(part, final)
            return "downloaded"
        except _Permanent as exc:
            raise DownloadError(f"{job.url}: {exc}") from None
        except (DownloadError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last = exc  # a dropped connection keeps its .part: the next try continues it
    raise DownloadError(f"{job.url}: failed after {retries + 1} tries: {type(last).__name__}: {last}")


def download_frames(jobs: Sequence[FrameJob], out_dir: Path, workers: int = 8, retries: int = 4,
                    backoff: float = 1.0, timeout: float = 60.0, progress: bool = True
                    ) -> dict[str, Any]:
    """Fetch ``jobs`` into ``out_dir`` in parallel; returns a summary with the failures."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    counts = {"downloaded": 0, "present": 0}
    failed: list[tuple[str, str]] = []
    bar = Progress(TextColumn("[bold]download"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not progress)
    with bar, cf.ThreadPoolExecutor(max(1, workers)) as pool:
        task = bar.add_task("download", total=len(jobs), info="")
        futures = {pool.submit(fetch, job, out_dir, retries, backoff, timeout): job for job in jobs}
        for fut in cf.as_completed(futures):
            try:
                counts[fut.result()] += 1
            except DownloadError as exc:
                failed.append((futures[fut].filename, str(exc)))
            bar.update(task, advance=1, info=f"{counts['present']} present, {len(failed)} failed")
    return {"frames": len(jobs), **counts, "failed": sorted(failed),
            "seconds": time.perf_counter() - t0, "out_dir": str(out_dir)}
