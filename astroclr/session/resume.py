"""Continuing an interrupted run from its last checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import astroclr.config as cfgmod
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.rundir import RunDir, open_run

if TYPE_CHECKING:
    from astroclr.plugin.registry import Registry
    from astroclr.resolved import Config

def prepare_resume(rundir: RunDir, config: Any, sets: Sequence[str], overrides: Mapping[str, Any],
                   registry: "Registry") -> tuple[RunDir, "Config", str | None]:
    """Validate that ``rundir`` can be resumed with the given options.

    Returns the run directory, its configuration and the checkpoint to continue from (None
    when training never reached its first checkpoint: it starts again from step 0).
    """
    existing = open_run(rundir.path)
    stored = existing.config
    asked = cfgmod.assemble_config(config, sets, **overrides) if (config or sets or overrides) else {}
    merged = cfgmod.merge(stored, asked)
    defaults = cfgmod.defaults()  # a run made before a key existed had its default
    for table, key in cfgmod.KEPT_ON_RESUME:  # declared in astroclr.resolved
        before = stored.get(table, {}).get(key, defaults[table].get(key))
        after = merged.get(table, {}).get(key, defaults[table].get(key))
        if before != after:
            what = (f"backbone {before!r}; --resume continues the same network, so another "
                    f"backbone ({after!r}) needs a new run (--out)") if key == "backbone" else \
                f"{table}.{key} = {before!r}, not {after!r}"
            raise AstroclrError(f"cannot resume {rundir.path}: it was made with {what}")
    cfg = cfgmod.resolve(merged, registry)
    tables = cfg.tables()
    made = cfgmod.resolve(stored, registry).tables()
    for table in ("dataset", "backbone", "method"):
        for key in sorted(set(made[table]) | set(tables[table])):
            before, after = made[table].get(key), tables[table].get(key)
            if before != after:
                owner = made["train"]["method"] if table == "method" else made["run"][table]
                raise AstroclrError(f"cannot resume {rundir.path}: it was made with {table}.{key} "
                                    f"= {before!r}, not {after!r}; a resumed run keeps its "
                                    f"{table} ({owner}) parameters")
    if existing.state.get("status") == "complete":
        raise AstroclrError(f"run {rundir.path} is already complete; nothing to resume")
    ckpt = rundir.last_checkpoint
    if ckpt.is_file():
        _check_checkpoint(ckpt)
        return rundir, cfg, str(ckpt)
    return rundir, cfg, None


def _check_checkpoint(path: Any) -> None:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AstroclrError(f"checkpoint {path} is corrupt or incomplete ({type(exc).__name__}); "
                            f"the run directory was left as it is") from exc
    if "state_dict" not in data or "loops" not in data:
        raise AstroclrError(f"checkpoint {path} is not a Lightning training checkpoint")
