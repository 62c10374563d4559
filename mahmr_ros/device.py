"""The one place a configured device name (``auto`` / ``cpu`` / ``cuda[:i]``) becomes a
``torch.device``."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto", where: str = "device") -> torch.device:
    """``auto`` -> CUDA when torch sees a CUDA device, else the CPU; anything else as
    ``torch.device``.

    Args:
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a ``torch.device``.
        where: the caller's name for error messages (e.g. ``body.smpl``).

    Returns:
        The device.

    Raises:
        ValueError: an unknown device name, or a CUDA device requested where torch sees none.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"[{where}] unknown device '{device}' (auto, cpu, cuda[:i])") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"[{where}] device '{device}' requested but torch sees no CUDA device (use cpu)"
        )
    return dev
