"""Which torch device a model runs on: `auto` → CUDA when present, else CPU."""

from __future__ import annotations

import torch

from graphfraud.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """`auto` | `cpu` | `cuda` (or `cuda:N`) → a usable `torch.device`.

    Asking for CUDA on a machine without it is a configuration error, not a silent CPU fallback:
    a GPU host that lost its driver should fail loudly.
    """
    choice = device.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"model device {device!r} requested but CUDA is not available "
                f"(torch {torch.__version__})",
                hint="use --device auto or cpu, or install a CUDA build of torch on a GPU host",
            )
        return torch.device(choice)
    raise ConfigError(f"unknown model device {device!r}", hint=f"one of {', '.join(DEVICES)}")
