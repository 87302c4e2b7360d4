from __future__ import annotations

import pytest
import torch

from graphfraud.errors import ConfigError
from graphfraud.model.device import resolve_device


def test_auto_picks_cuda_only_when_present() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("CPU").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_explicit_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


def test_unknown_device_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown model device"):
        resolve_device("tpu")
