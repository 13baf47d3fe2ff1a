"""Choosing the torch device for the segmentation network ("auto", "cpu" or "cuda")."""

from __future__ import annotations

import torch

from ..errors import DelicaiteError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> torch.device:
    """torch.device for ``device``: "auto" takes CUDA when torch sees a GPU, else the CPU.

    Asking for "cuda" on a machine without a usable GPU is an error, not a silent fallback, so a
    user who expects GPU speed learns at once why it is not there.
    """
    if device not in DEVICES:
        raise DelicaiteError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise DelicaiteError(
            "device 'cuda' was requested but torch sees no CUDA GPU (CPU-only torch build or no driver); "
            "use device 'cpu' or 'auto'"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)
