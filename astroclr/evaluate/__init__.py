"""Evaluation: the context evaluators receive, shared splits, embedding, similarity search."""

from typing import Any


def __getattr__(name: str) -> Any:  # old path astroclr.evaluate.EvalResult, kept for one release
    if name in ("EvalContext", "EvalResult"):
        from astroclr.evaluate import context

        return getattr(context, name)
    raise AttributeError(f"module 'astroclr.evaluate' has no attribute {name!r}")
