"""One weights loader for a run's encoder, a model package and a classifier: tensors only,
finite, and a one-line error naming the file for anything else."""

from __future__ import annotations

import pytest
import torch

from astroclr.plugin.specs import AstroclrError
from astroclr.train.weights import load_into, read_weights


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_torch_and_safetensors_files_read_back_the_same_tensors(tmp_path, name):
    from safetensors.torch import save_file

    net, path = _net(), tmp_path / name
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    torch.save(state, path) if name.endswith(".pt") else save_file(state, str(path))
    loaded = load_into(torch.nn.Linear(3, 2), read_weights(path), path, "the backbone")
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_nan_weights_are_refused_in_either_format(tmp_path, name):
    from safetensors.torch import save_file

    state = {"weight": torch.full((2, 3), float("nan")), "bias": torch.zeros(2)}
    path = tmp_path / name
    torch.save(state, path) if name.endswith(".pt") else save_file(state, str(path))
    with pytest.raises(AstroclrError, match=f"{name}: weight 'weight' holds NaN"):
        read_weights(path)


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_an_unreadable_file_is_one_line_naming_it(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00not weights" * 20)
    with pytest.raises(AstroclrError, match=name) as info:
        read_weights(path)
    assert "\n" not in str(info.value)


def test_weights_of_another_architecture_name_the_file_and_what_they_should_match(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(_net().state_dict(), path)
    with pytest.raises(AstroclrError, match="weights.pt does not match the classifier's") as info:
        load_into(torch.nn.Linear(4, 2), read_weights(path), path, "the classifier's network")
    assert "\n" not in str(info.value)
