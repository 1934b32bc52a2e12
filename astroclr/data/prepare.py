"""Writing a prepared dataset: parallel, chunked, resumable (see :mod:`astroclr.data.prepared`)."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import inspect
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from astroclr.data.prepared import (
    DEFAULT_CHUNK,
    FINAL_FILES,
    FORMAT,
    FORMAT_VERSION,
    PARTIAL,
    ChunkResult,
    GalaxiesSource,
    PrepareSource,
    Skip,
    read_meta,
    reason_counts,
    write_skipped_csv,
)
from astroclr.data.rowfile import RowFile
from astroclr.files import check_writable, to_jsonable, write_json
from astroclr.lock import LOCK_NAME, locked
from astroclr.plugin.specs import AstroclrError, validate_params


# -- entry points -------------------------------------------------------------------------------
def prepare_dataset(
    registry: Any,
    dataset_name: str,
    params: Mapping[str, Any],
    out_dir: Path,
    workers: int | None = None,
    progress: bool = True,
    *,
    max_chunks: int | None = None,
) -> dict[str, Any]:
    """Write dataset ``dataset_name`` with ``params`` as a prepared dataset in ``out_dir``.

    Uses the DatasetSpec's own ``prepare`` where it has one (streaming, parallel); otherwise
    loads the dataset into memory and writes that. Returns the summary of :func:`write_prepared`.
    ``max_chunks`` stops after that many new chunks (an incremental run; a rerun continues).
    """
    spec = registry.get("dataset", dataset_name)
    resolved = validate_params(spec.all_params, dict(params), f"dataset.{dataset_name}")
    out_dir = check_writable(out_dir, "--out")  # before any data is read
    if spec.prepare is not None:
        extra = {"workers": workers, "progress": progress, "max_chunks": max_chunks}
        accepted = inspect.signature(spec.prepare).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        extra = {k: v for k, v in extra.items() if takes_any or k in accepted}
        summary = spec.prepare(out_dir, **extra, **resolved)
    else:
        galaxies = spec.load(**resolved)
        source = GalaxiesSource(galaxies, {"dataset": dataset_name, "params": resolved})
        # The images are already in this process's memory: workers would only copy them.
        summary = write_prepared(source, out_dir, workers=1, progress=progress,
                                 max_chunks=max_chunks)
    summary.setdefault("dataset", dataset_name)
    return summary


def write_prepared(
    source: PrepareSource,
    out_dir: Path,
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
    max_chunks: int | None = None,
) -> dict[str, Any]:
    """Process ``source`` chunk by chunk (in parallel) into a prepared dataset at ``out_dir``.

    Resumable: chunks recorded in ``out_dir/.partial/chunks`` are not redone. Returns a summary:
    ``complete``, ``kept``, ``skipped`` (count per reason), ``skipped_total``, ``candidates``,
    ``filled_pixels``, ``seconds``, ``galaxies_per_s``, ``chunks_done``/``chunks_total``,
    ``chunks_resumed``.
    """
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    fingerprint = _fingerprint(source, chunk_size)
    done = _completed(out_dir, fingerprint)
    if done is not None:
        return done
    if len(source.catalog) == 0:
        _nothing_left(out_dir, list(source.pre_skipped), "no galaxies to prepare")
    _check_out_dir(out_dir)
    with locked(out_dir, "prepare"):
        done = _completed(out_dir, fingerprint)  # finished by another prepare meanwhile
        if done is not None:
            return done
        return _write_unlocked(source, out_dir, workers, progress, chunk_size, max_chunks,
                               fingerprint, t0)


def _completed(out_dir: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of the prepared dataset already in ``out_dir`` (None when there is none);
    an error when it was made from other inputs."""
    if not (out_dir / "meta.json").exists():
        return None
    meta = read_meta(out_dir)
    if meta.get("source") != fingerprint:
        raise AstroclrError(f"{out_dir} already holds a prepared dataset made from other "
                            f"inputs or parameters; choose another output directory")
    # meta.json is moved in last: everything else is in place. A leftover .partial is only
    # an interrupted clean-up.
    shutil.rmtree(out_dir / PARTIAL, ignore_errors=True)
    return _summary_from_meta(out_dir, meta, seconds=0.0, already=True)


def _write_unlocked(source: PrepareSource, out_dir: Path, workers: int | None, progress: bool,
                    chunk_size: int, max_chunks: int | None, fingerprint: dict[str, Any],
                    t0: float) -> dict[str, Any]:
    """:func:`write_prepared` once ``out_dir`` is checked and locked."""
    n = len(source.catalog)
    c, h, w = (int(v) for v in source.image_shape)
    partial = out_dir / PARTIAL
    chunks_dir = partial / "chunks"
    chunks_dir.mkdir(parents=True, exist_ok=True)
    state_file = partial / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") != fingerprint:
            raise AstroclrError(
                f"{partial} holds an interrupted prepare with other inputs or parameters; "
                f"delete it (or choose another output directory) to start afresh")
    else:
        write_json(state_file, {"fingerprint": fingerprint, "n": n, "shape": [c, h, w]})
    staging_path = partial / "rows.npy"
    staging: RowFile | None = None
    finalising = (partial / "meta.json").exists() or (
        (partial / "images.npy").exists() and not staging_path.exists())
    if finalising:
        pass  # finalising was interrupted after the images were complete: finish it
    elif staging_path.exists():
        staging = RowFile(staging_path, (n, c, h, w))
    else:
        # Sparse on disk until written: one row per candidate, compacted at the end.
        staging = RowFile.create(staging_path, (n, c, h, w))

    bounds = [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    done = {int(p.stem) for p in chunks_dir.glob("*.json")}
    todo = [i for i in range(len(bounds)) if i not in done]
    resumed = len(done)
    if max_chunks is not None:
        todo = todo[:max_chunks]
    workers = max(1, min(workers or _available_cores(), len(todo) or 1))

    if staging is not None and todo:
        try:
            _run_chunks(source, bounds, todo, staging, chunks_dir, workers, progress, n)
        except KeyboardInterrupt:
            finished = len(list(chunks_dir.glob("*.json")))
            raise AstroclrError(f"prepare interrupted: {finished} of {len(bounds)} chunks are "
                                f"done in {partial}; run the same command again to "
                                f"resume") from None
    done = {int(p.stem) for p in chunks_dir.glob("*.json")}
    seconds = time.perf_counter() - t0
    if len(done) < len(bounds):
        records = [_read_chunk_record(chunks_dir, i) for i in sorted(done)]
        skips = list(source.pre_skipped) + [Skip(int(r[0]), str(r[1]), str(r[2]), str(r[3]))
                                            for rec in records for r in rec["skipped"]]
        processed = sum(bounds[i][1] - bounds[i][0] for i in todo)
        return {"out_dir": str(out_dir), "complete": False,
                "kept": sum(len(r["kept"]) for r in records),
                "skipped": reason_counts(skips), "skipped_total": len(skips),
                "filled_pixels": sum(int(r.get("filled", 0)) for r in records),
                "chunks_done": len(done), "chunks_total": len(bounds), "chunks_resumed": resumed,
                "seconds": seconds, "galaxies_per_s": _rate(processed, seconds)}
    if staging is not None:
        staging.close()
    meta = _finalise(source, out_dir, bounds, (c, h, w), fingerprint)
    seconds = time.perf_counter() - t0
    summary = _summary_from_meta(out_dir, meta, seconds=seconds, already=False)
    summary["chunks_resumed"] = resumed
    processed = sum(bounds[i][1] - bounds[i][0] for i in todo)
    summary["galaxies_per_s"] = _rate(processed, seconds)
    return summary


# -- the work -----------------------------------------------------------------------------------
_WORKER_SOURCE: PrepareSource | None = None


def _init_worker(source: PrepareSource) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source
    # Each worker handles whole chunks: more BLAS/OpenMP threads would only oversubscribe.
    os.environ["OMP_NUM_THREADS"] = "1"


def _work(index: int, start: int, stop: int) -> tuple[int, ChunkResult]:
    assert _WORKER_SOURCE is not None
    return index, _WORKER_SOURCE.read_chunk(start, stop)


def _run_chunks(source, bounds, todo, staging: "RowFile", chunks_dir, workers, progress,
                n) -> None:
    from astroclr.progress import step

    done_rows = n - sum(bounds[i][1] - bounds[i][0] for i in todo)
    skipped = 0
    rows = 0
    t0 = time.perf_counter()
    with step("prepare", total=n, enabled=progress, completed=done_rows) as advance:

        def record(index: int, result: ChunkResult) -> None:
            nonlocal skipped, rows
            staging.write_rows(result.kept, result.images)
            # On disk before the marker: a chunk recorded as done has its images written.
            staging.sync()
            write_json(chunks_dir / f"{index:06d}.json", {
                "kept": result.kept.tolist(),
                "skipped": [[s.row, s.reason, s.detail, s.id] for s in result.skipped],
                "columns": {k: np.asarray(v, dtype=float).tolist() for k, v in result.columns.items()},
                "filled": int(result.filled),
            })
            skipped += len(result.skipped)
            a, b = bounds[index]
            rows += b - a
            rate = _rate(rows, time.perf_counter() - t0)
            advance(b - a, info=f"{rate:,.0f} gal/s, {skipped} skipped")

        if workers == 1:
            for i in todo:
                record(i, source.read_chunk(*bounds[i]))
            return
        with cf.ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(source,)) as pool:
            # Keep a bounded number of chunks in flight so results do not pile up in memory.
            pending: set[cf.Future] = set()
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    i = queue.pop(0)
                    pending.add(pool.submit(_work, i, *bounds[i]))
                finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    record(*fut.result())
            # (on an exception, leaving the with-block cancels what has not started)


def _finalise(source, out_dir: Path, bounds, shape, fingerprint) -> dict[str, Any]:
    """Compact the staged rows, write catalogue, skip list and meta.json, move them into place."""
    partial = out_dir / PARTIAL
    chunks_dir = partial / "chunks"
    if not (partial / "meta.json").exists():
        kept_parts, skips, filled = [], list(source.pre_skipped), 0
        columns: dict[str, list] = {}
        for i in range(len(bounds)):
            rec = _read_chunk_record(chunks_dir, i)
            kept_parts.append(np.asarray(rec["kept"], dtype=np.int64))
            skips += [Skip(int(r), str(reason), str(detail), str(i))
                      for r, reason, detail, i in rec["skipped"]]
            filled += int(rec.get("filled", 0))
            for k, v in rec.get("columns", {}).items():
                columns.setdefault(k, []).extend(v)
        kept = np.concatenate(kept_parts) if kept_parts else np.zeros(0, np.int64)
        if len(kept) == 0:
            _nothing_left(out_dir, skips, "every galaxy was skipped")
        staging_path = partial / "rows.npy"
        images_path = partial / "images.npy"
        n = len(source.catalog)
        if not staging_path.exists():
            # rows.npy goes only once images.npy is complete (renamed, or compacted and synced)
            if not images_path.exists():
                raise AstroclrError(f"{partial} is damaged (neither rows.npy nor images.npy); "
                                    f"delete it to start afresh")
        elif len(kept) == n and np.array_equal(kept, np.arange(n)):
            os.replace(staging_path, images_path)
        else:
            staging = RowFile(staging_path, (n, *shape))
            out = RowFile.create(images_path, (len(kept), *shape))
            block = 4096  # rows per copy: bounded memory whatever N is
            for s in range(0, len(kept), block):
                rows = kept[s : s + block]
                out.write_rows(np.arange(s, s + len(rows)), staging.read_rows(rows))
            out.sync()
            out.close()
            staging.close()
            staging_path.unlink()
        catalog = source.catalog[kept]
        for k, v in columns.items():
            if len(v) == len(kept):
                catalog[k] = np.asarray(v, dtype=np.float32)
        catalog.meta.clear()  # free-form meta can hold things FITS headers cannot
        catalog.write(partial / "catalog.fits", overwrite=True)
        write_skipped_csv(partial / "skipped.csv", skips)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "survey": source.survey.to_dict(),
            "preprocessing": source.preprocessing.to_dict(),
            "label_names": list(source.label_names) if source.label_names else None,
            "raw_size": source.raw_size,
            "count": int(len(kept)),
            "shape": list(shape),
            "dtype": "float32",
            "candidates": int(n + len(source.pre_skipped)),
            "skipped": reason_counts(skips),
            "skipped_total": len(skips),
            "filled_pixels": filled,
            "source": fingerprint,
        }
        write_json(partial / "meta.json", meta)
    meta = json.loads((partial / "meta.json").read_text())
    # meta.json moves last: until it is in place, out_dir is not a complete dataset.
    for name in FINAL_FILES:
        if (partial / name).exists():
            os.replace(partial / name, out_dir / name)
    shutil.rmtree(partial)
    return meta


# -- helpers ------------------------------------------------------------------------------------
def _nothing_left(out_dir: Path, skips: list[Skip], what: str) -> None:
    """Write the skip report of a prepare that kept no galaxy, then say why in one line."""
    counts = ", ".join(f"{k}: {v}" for k, v in reason_counts(skips).items()) or "no candidates"
    where = ""
    if skips:
        _check_out_dir(out_dir)
        write_skipped_csv(out_dir / "skipped.csv", skips)
        first = skips[0]
        where = (f"; e.g. id {first.id} (row {first.row}): {first.reason}: {first.detail}; "
                 f"every galaxy in {out_dir / 'skipped.csv'}")
    raise AstroclrError(f"prepare {out_dir}: {what} ({counts}){where}")


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise AstroclrError(f"prepare: {out_dir} exists and is not a directory")
    if out_dir.exists():
        ours = (PARTIAL, LOCK_NAME, *FINAL_FILES)
        foreign = [p.name for p in out_dir.iterdir()
                   if p.name not in ours and not p.name.startswith(LOCK_NAME + ".")]
        if foreign:
            raise AstroclrError(f"prepare: {out_dir} is not empty ({foreign[0]}, ...) and is not a "
                                f"prepared dataset; choose an empty or new directory")
    out_dir.mkdir(parents=True, exist_ok=True)


def _fingerprint(source: PrepareSource, chunk_size: int) -> dict[str, Any]:
    ids = np.asarray(source.catalog["id"])
    digest = hashlib.sha1(np.ascontiguousarray(ids.astype(str)).tobytes()).hexdigest()
    # JSON-safe, so it compares equal to the copy read back from state.json on resume
    return to_jsonable({
        "source": source.fingerprint, "ids_sha1": digest, "n": len(ids),
        "chunk_size": chunk_size, "shape": list(source.image_shape),
        "preprocessing": source.preprocessing.to_dict(),
    })


def _read_chunk_record(chunks_dir: Path, index: int) -> dict[str, Any]:
    return json.loads((chunks_dir / f"{index:06d}.json").read_text())


def _summary_from_meta(out_dir: Path, meta: Mapping[str, Any], seconds: float,
                       already: bool) -> dict[str, Any]:
    return {
        "out_dir": str(out_dir), "complete": True, "already_complete": already,
        "kept": meta["count"], "candidates": meta.get("candidates"),
        "skipped": dict(meta.get("skipped", {})), "skipped_total": meta.get("skipped_total", 0),
        "filled_pixels": meta.get("filled_pixels", 0), "shape": meta["shape"],
        "seconds": seconds, "galaxies_per_s": _rate(meta["count"], seconds) if not already else 0.0,
    }


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset / container CPU sets
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _rate(count: float, seconds: float) -> float:
    return float(count) / seconds if seconds > 0 else 0.0

