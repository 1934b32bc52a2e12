"""Trained weights read back into a network: one loader for a run's encoder (``model.pt``), a
model package's (``model.safetensors``) and a classifier's (``weights.pt``).

Every file is read as tensors only, on the CPU (nothing is unpickled: a shared file never runs
code), refused when it holds NaN or inf, and loaded into a freshly built network with a
one-line error when it is of another architecture; the device is chosen once, here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    import torch

#: file suffixes read with safetensors; anything else is torch's tensors-only format
SAFETENSORS_SUFFIXES = (".safetensors",)


def pick_device(device: str | None) -> str:
    """``device``, or the GPU when there is one, else the CPU."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def read_weights(path: str | Path) -> dict[str, Any]:
    """The state dict in ``path``, on the CPU, checked finite; a one-line error naming the
    file when it is unreadable, of another kind, or holds NaN/inf."""
    path = Path(path)
    if path.suffix in SAFETENSORS_SUFFIXES:
        weights = _read_safetensors(path)
    else:
        import torch

        try:  # tensors only: a weights file never unpickles code
            weights = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise AstroclrError(f"{path} is corrupt: {type(exc).__name__}") from None
    return check_finite_weights(weights, path)


def _read_safetensors(path: Path) -> dict[str, Any]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise AstroclrError(f"{path}: reading a model package needs safetensors "
                            f"(pip install safetensors)") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # a truncated or foreign file
        raise AstroclrError(f"{path} is not a readable safetensors file: "
                            f"{type(exc).__name__}: {exc}") from None


def load_into(net: "torch.nn.Module", weights: Mapping[str, Any], path: str | Path,
              what: str) -> "torch.nn.Module":
    """``net`` with ``weights`` (read from ``path``) loaded; a one-line error when they are
    of another architecture than ``what`` (e.g. "the run's backbone")."""
    try:
        net.load_state_dict(weights)
    except Exception as exc:
        raise AstroclrError(f"{path} does not match {what}: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    return net


def check_finite_weights(weights: Any, path: str | Path) -> Any:
    """``weights`` (a state_dict) unless a tensor holds NaN or inf: a network of them answers
    every input alike (a classifier labels every galaxy with one class), so it is refused."""
    import torch

    if not isinstance(weights, Mapping):
        raise AstroclrError(f"{path} is not a state dict of tensors")
    for name, value in weights.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and not bool(torch.isfinite(value).all()):
            raise AstroclrError(f"{path}: weight {name!r} holds NaN or inf values (training "
                                f"diverged); train it again, e.g. with a lower learning rate")
    return weights
