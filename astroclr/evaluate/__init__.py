"""Evaluation: the context evaluators receive, shared splits, embedding, similarity search."""

from typing import Any


def __getattr__(name: str) -> Any:  # 0.1.0's astroclr.evaluate.EvalResult: astroclr/moved.py
    from astroclr.moved import MOVED, moved

    if name in MOVED["astroclr.evaluate"]:
        return moved("astroclr.evaluate", name)
    raise AttributeError(f"module 'astroclr.evaluate' has no attribute {name!r}")
