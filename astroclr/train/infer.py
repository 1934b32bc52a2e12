"""Running a network over every galaxy of a dataset, on one device or many, resumably: the one
engine of the run's embedding, ``astroclr embed`` and ``astroclr predict``.

(It replaced a second engine, one model copy per GPU in threads, which measured the same speed
on CPU: resnet18 488 vs 484 images/s, smallcnn 389 vs 376, 2 cores; this one also resumes and
spans processes and nodes.)

Lightning's predict loop does the work (``trainer.predict``, any accelerator, devices, nodes
and strategy that ``astroclr run`` accepts). The galaxies are cut into contiguous batches;
process ``rank`` of ``world`` takes batches ``rank, rank + world, ...``. A
:class:`~lightning.pytorch.callbacks.BasePredictionWriter` writes each batch's outputs and row
numbers into that process's own *shard* (two ``.npy`` memory maps in a work directory beside
the output) and records, every few batches and after flushing, how many batches are done. Then:

- memory stays bounded by a batch (nothing is collected: ``return_predictions=False``);
- an interrupted run resumes: each process skips the batches its shard already holds, as long
  as the model, the galaxies (ids and a sample of their pixels) and the number of processes
  are the same;
- once all processes are done, the first merges the shards by row (each galaxy's id is its
  row's), checking that every galaxy is present exactly once, into one ``(N, D)`` memory map.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset, Sampler

from astroclr.files import ids_digest, read_json, write_json
from astroclr.plugin.specs import AstroclrError
from astroclr.train.devices import one_line, quiet_lightning, trainer_error
from astroclr.train.launch import launched_rank

if TYPE_CHECKING:
    from astroclr.resolved import TrainOptions

#: batches between flushes of a shard and its progress record
FLUSH_EVERY = 16
#: batches between releases of the image pages read (see release_pages)
RELEASE_EVERY = 8


class RowBatches(Dataset):
    """Indexing with (start, stop) returns that batch of images and its row numbers."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images
        self.reads = 0

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, span: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        from astroclr.data.prepared import release_pages

        a, b = span
        self.reads += 1
        if self.reads % RELEASE_EVERY == 0:  # a memory-mapped cube's pages read so far count in
            release_pages(self.images)       # the RSS until unmapped: keep it flat in N
        x = torch.from_numpy(np.array(self.images[a:b], dtype=np.float32))  # mmaps are read-only
        return x, torch.arange(a, b, dtype=torch.int64)


class ShardBatches(Sampler[tuple[int, int]]):
    """This process's contiguous batches: global batches ``rank, rank + world, ...``, from its
    ``start``-th on (the ones a resumed shard already holds are skipped)."""

    def __init__(self, n: int, batch_size: int, rank: int = 0, world: int = 1,
                 start: int = 0) -> None:
        self.n, self.batch_size, self.rank, self.world, self.start = n, batch_size, rank, world, start

    def spans(self) -> list[tuple[int, int]]:
        n_batches = -(-self.n // self.batch_size)
        return [(b * self.batch_size, min((b + 1) * self.batch_size, self.n))
                for b in range(self.rank, n_batches, self.world)]

    def rows(self) -> int:
        return sum(b - a for a, b in self.spans())

    def __len__(self) -> int:
        return max(0, len(self.spans()) - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.spans()[self.start:])


class Predictor(L.LightningModule):
    """Wraps a network for Lightning's predict loop: (images, rows) -> (outputs, rows)."""

    def __init__(self, module: torch.nn.Module, transform: Callable[[torch.Tensor], torch.Tensor]
                 | None = None, channels_last: bool = False) -> None:
        super().__init__()
        self.module = module
        self.transform = transform
        self.channels_last = channels_last

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        x, rows = batch
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.module(x)
        if self.transform is not None:
            y = self.transform(y)
        return y.float(), rows


class Shard:
    """One process's outputs and row numbers: memory maps plus a progress record."""

    def __init__(self, work: Path, rank: int, world: int) -> None:
        stem = f"shard{rank:04d}of{world:04d}"
        self.values = work / f"{stem}.values.npy"
        self.rows = work / f"{stem}.rows.npy"
        self.progress = work / f"{stem}.json"

    def done(self, key: dict) -> int:
        """Batches this shard already holds for ``key`` (0 if it holds none or another's)."""
        record = read_json(self.progress, {}) if self.progress.is_file() else {}
        if record.get("key") != key or not (self.values.is_file() and self.rows.is_file()):
            return 0
        return int(record.get("batches", 0))


class ShardWriter(BasePredictionWriter):
    """Writes each batch's outputs into this process's shard, flushing every few batches."""

    def __init__(self, work: Path, key: dict, sampler: ShardBatches, dim: int,
                 advance: Callable[[int], None] | None = None) -> None:
        super().__init__(write_interval="batch")
        self.work, self.key, self.sampler, self.dim = work, key, sampler, dim
        self.advance = advance
        self.shard = Shard(work, sampler.rank, sampler.world)
        self.batches = sampler.start
        self.pos = sum(b - a for a, b in sampler.spans()[:sampler.start])
        total = sampler.rows()
        if sampler.start:
            self.values = np.load(self.shard.values, mmap_mode="r+")
            self.rows = np.load(self.shard.rows, mmap_mode="r+")
        else:
            self.values = np.lib.format.open_memmap(self.shard.values, mode="w+",
                                                    dtype=np.float32, shape=(total, dim))
            self.rows = np.lib.format.open_memmap(self.shard.rows, mode="w+", dtype=np.int64,
                                                  shape=(total,))
            self._record()

    def _record(self) -> None:
        from astroclr.data.prepared import release_pages

        self.values.flush()
        self.rows.flush()
        release_pages(self.values)  # flushed pages are clean: unmapping them keeps RSS flat
        release_pages(self.rows)
        write_json(self.shard.progress, {"key": self.key, "batches": self.batches,
                                         "rows": self.pos})

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           prediction: Any, batch_indices: Any, batch: Any, batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        y, rows = prediction
        k = int(rows.shape[0])
        self.values[self.pos:self.pos + k] = y.detach().cpu().numpy()
        self.rows[self.pos:self.pos + k] = rows.cpu().numpy()
        self.pos += k
        self.batches += 1
        if self.advance is not None:
            self.advance(k)
        if self.batches % FLUSH_EVERY == 0:
            self._record()

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record()
        write_json(self.shard.progress, {"key": self.key, "batches": self.batches,
                                         "rows": self.pos, "complete": True})


#: rows of the images hashed into a resume key (evenly spaced, the first and last included)
PIXEL_SAMPLE_ROWS = 1024


def pixels_digest(images: np.ndarray, rows: int = PIXEL_SAMPLE_ROWS) -> str:
    """SHA-1 of the images' shape, dtype and the pixels of up to ``rows`` evenly spaced
    galaxies: another dataset with the same ids (another band set, another preparation) never
    resumes this one's parts, for the cost of reading ``rows`` images, not all of them."""
    h = hashlib.sha1(f"{tuple(images.shape)} {images.dtype}".encode())
    n = len(images)
    for i in np.unique(np.linspace(0, n - 1, min(n, rows)).astype(np.int64)) if n else ():
        h.update(np.ascontiguousarray(images[int(i)]).tobytes())
    return h.hexdigest()


def model_fingerprint(module: torch.nn.Module) -> str:
    """A hash of the module's weights and buffers: a partial result is only resumed with the
    same model."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def output_dim(module: torch.nn.Module, images: np.ndarray,
               transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> int:
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    x = torch.from_numpy(np.array(images[:1], dtype=np.float32)).to(device)
    with torch.no_grad():
        was = module.training
        module.eval()
        y = module(x)
        module.train(was)
    return int(y.shape[1])


def predict_trainer(train: "TrainOptions", callbacks: list) -> L.Trainer:
    """A Lightning trainer for inference on ``train``'s accelerator, devices, nodes, strategy
    (its own progress bar off: astroclr.progress draws every step alike)."""
    import warnings

    quiet_lightning()
    # the writer gets each batch's row numbers with its outputs, not from Lightning's tracking
    warnings.filterwarnings("ignore", message=".*infer the batch indices.*")
    try:
        return L.Trainer(accelerator=train.lightning_accelerator, devices=train.device_spec,
                         num_nodes=train.num_nodes, strategy=train.strategy,
                         precision=train.lightning_precision, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False,
                         callbacks=callbacks, inference_mode=True)
    except Exception as exc:
        raise trainer_error(train, exc) from None


def infer(module: torch.nn.Module, images: np.ndarray, ids: np.ndarray, work: str | Path,
          train: "TrainOptions", batch_size: int, *, fingerprint: str | None = None,
          transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
          progress: bool = False, description: str = "embedding") -> np.ndarray | None:
    """Outputs of ``module`` for every image, (N, D) float32 in row order, memory-mapped from
    ``work/merged.npy``; None in every process but the first (which alone merges). The first
    process shows ``description``'s progress bar (its share, scaled to all galaxies).

    ``fingerprint`` identifies the model (a partial shard of another model is not resumed;
    default: :func:`model_fingerprint` of ``module``).
    """
    import torch.distributed as dist

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    n = len(images)
    dim = output_dim(module, images, transform)
    if fingerprint is None:
        fingerprint = model_fingerprint(module)
    key = {"n": n, "dim": dim, "model": fingerprint, "ids": ids_digest(ids, ordered=True),
           "pixels": pixels_digest(images), "batch_size": int(batch_size)}
    merged = work / "merged.npy"
    merged_key = work / "merged.json"
    if merged.is_file() and read_json(merged_key, {}).get("key") == key:
        return np.load(merged, mmap_mode="r") if launched_rank() == 0 else None
    _check_world(n, batch_size, _requested_world(train))
    placeholder = ShardBatches(n, batch_size)
    show = progress and launched_rank() == 0

    class Setup(L.Callback):
        """The shard is known once the process's rank and the world size are."""

        def __init__(self, advance: Callable[..., None]) -> None:
            self.advance = advance

        def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
            rank, world = int(trainer.global_rank), int(trainer.world_size)
            _check_world(n, batch_size, world)  # devices=auto/-1: known only now
            shard_key = {**key, "world": world}
            start = Shard(work, rank, world).done(shard_key)
            placeholder.rank, placeholder.world, placeholder.start = rank, world, start
            writer = ShardWriter(work, shard_key, placeholder, dim,
                                 advance=lambda k: self.advance(k * world))
            self.advance(writer.pos * world)
            trainer.callbacks.append(writer)

    from astroclr.progress import step

    cuda = train.on_gpu
    predictor = Predictor(module.eval(), transform, channels_last=cuda)
    loader = DataLoader(RowBatches(images), sampler=placeholder, batch_size=None, num_workers=0,
                        pin_memory=cuda)
    with step(description, total=n, enabled=show) as advance:
        trainer = predict_trainer(train, [Setup(advance)])
        try:
            trainer.predict(predictor, dataloaders=loader, return_predictions=False)
        except AstroclrError:
            raise
        except Exception as exc:
            raise AstroclrError(f"inference failed: {one_line(exc)}") from exc
    world = int(trainer.world_size)
    if world > 1 and dist.is_available() and dist.is_initialized():
        trainer.strategy.barrier("astroclr-shards-written")
    if int(trainer.global_rank) != 0 or launched_rank() != 0:
        return None
    out = merge_shards(work, n, dim, world, {**key, "world": world})
    write_json(merged_key, {"key": key})
    return out


def _requested_world(train: "TrainOptions") -> int | None:
    """The number of processes ``train`` asks for, when it says (not for devices=auto/-1)."""
    spec = train.device_spec
    count = len(spec) if isinstance(spec, list) else spec if isinstance(spec, int) else None
    return count * max(1, int(train.num_nodes)) if count and count > 0 else None


def _check_world(n: int, batch_size: int, world: int | None) -> None:
    """Every process needs a batch: a one-line error, before any work, when there are fewer."""
    batches = -(-n // max(1, int(batch_size)))
    if world is not None and world > batches:
        raise AstroclrError(f"{n} galaxies make {batches} batch{'es' if batches > 1 else ''} "
                            f"of {batch_size} but {world} processes were asked for (--devices "
                            f"x --num-nodes); use at most {batches}, or a smaller "
                            f"train.embed_batch_size")


def merge_shards(work: Path, n: int, dim: int, world: int, key: dict) -> np.ndarray:
    """The shards of ``world`` processes as one (N, D) memory map in row order; every row must
    be present exactly once (a one-line error names what is missing or doubled)."""
    merged = np.lib.format.open_memmap(work / "merged.partial.npy", mode="w+", dtype=np.float32,
                                       shape=(n, dim))
    seen = np.zeros(n, dtype=np.int32)
    for rank in range(world):
        shard = Shard(work, rank, world)
        record = read_json(shard.progress, {}) if shard.progress.is_file() else {}
        if record.get("key") != key or not record.get("complete"):
            raise AstroclrError(f"shard of process {rank} in {work} is missing or incomplete; "
                                f"run the command again to finish it")
        rows = np.load(shard.rows, mmap_mode="r")
        values = np.load(shard.values, mmap_mode="r")
        for a in range(0, len(rows), 65536):
            r = np.asarray(rows[a:a + 65536])
            merged[r] = values[a:a + 65536]
            np.add.at(seen, r, 1)
    lost, twice = int((seen == 0).sum()), int((seen > 1).sum())
    if lost or twice:
        raise AstroclrError(f"merging the shards in {work}: {lost} galaxies missing and {twice} "
                            f"written twice")
    merged.flush()
    del merged
    final = work / "merged.npy"
    (work / "merged.partial.npy").replace(final)
    return np.load(final, mmap_mode="r")


def remove_work(work: str | Path) -> None:
    """Remove a work directory once its result is written."""
    shutil.rmtree(work, ignore_errors=True)
