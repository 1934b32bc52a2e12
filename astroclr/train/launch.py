"""Which process of a distributed launch this is, without importing torch or Lightning."""

from __future__ import annotations

import os


def launched_rank() -> int:
    """This process's rank in a distributed launch, from the environment (0 when not launched).

    Lightning's DDP launcher re-runs the command for every extra process with ``LOCAL_RANK``
    set, SLURM's ``srun`` sets ``SLURM_PROCID``, torchrun sets ``RANK``: only the process for
    which all are 0 may create or write the run directory.
    """
    for name in ("RANK", "SLURM_PROCID", "NODE_RANK", "GROUP_RANK", "LOCAL_RANK"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            if name == "SLURM_PROCID" and int(os.environ.get("SLURM_NTASKS", "1") or 1) <= 1:
                continue
            return int(value)
    return 0
