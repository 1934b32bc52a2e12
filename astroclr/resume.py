"""Continuing an interrupted run from its last checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from astroclr import config as cfgmod
from astroclr.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.plugins import Registry

# Changing these would make the checkpoint meaningless for the run.
_MUST_MATCH = (("run", "dataset"), ("run", "backbone"), ("run", "seed"), ("train", "batch_size"),
               ("train", "representation_dim"), ("train", "projection_hidden_dim"),
               ("train", "projection_dim"))


def last_checkpoint(run_dir: Path) -> Path | None:
    path = run_dir / "checkpoints" / "last.ckpt"
    return path if path.is_file() else None


def prepare_resume(run_dir: Path, config: Any, sets: Sequence[str], overrides: Mapping[str, Any],
                   registry: "Registry") -> tuple[Path, dict[str, Any], str | None]:
    """Validate that ``run_dir`` can be resumed with the given options.

    Returns the run directory, its configuration and the checkpoint to continue from (None
    when training never reached its first checkpoint: it starts again from step 0).
    """
    from astroclr.runner import assemble_config, open_run

    existing = open_run(run_dir)
    stored = cfgmod.resolve(existing.config, registry)
    asked = assemble_config(config, sets, **overrides) if (config or sets or overrides) else {}
    cfg = cfgmod.resolve(cfgmod.merge(existing.config, asked), registry)
    for table, key in _MUST_MATCH:
        if cfg[table][key] != stored[table][key]:
            raise AstroclrError(f"cannot resume {run_dir}: it was made with {table}.{key} = "
                                f"{stored[table][key]!r}, not {cfg[table][key]!r}")
    if cfg["dataset"] != stored["dataset"] or cfg["backbone"] != stored["backbone"]:
        raise AstroclrError(f"cannot resume {run_dir}: its dataset or backbone parameters differ "
                            f"from the ones given")
    if existing.state.get("status") == "complete":
        raise AstroclrError(f"run {run_dir} is already complete; nothing to resume")
    ckpt = last_checkpoint(run_dir)
    if ckpt is not None:
        _check_checkpoint(ckpt)
    return run_dir, cfg, None if ckpt is None else str(ckpt)


def _check_checkpoint(path: Path) -> None:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AstroclrError(f"checkpoint {path} is corrupt or incomplete ({type(exc).__name__}); "
                            f"the run directory was left as it is") from exc
    if "state_dict" not in data or "loops" not in data:
        raise AstroclrError(f"checkpoint {path} is not a Lightning training checkpoint")
