"""``torch.compile`` where it works. On a CPU, inductor writes C++ and needs a working compiler; without one the
function runs as it is, after a warning, rather than failing a long run at its first step."""

from __future__ import annotations

import warnings

import torch


def compiled(fn, device, **options):
    """``torch.compile(fn, **options)`` if a one-line function compiles and runs on ``device`` here, else ``fn``."""
    try:
        torch.compile(lambda t: torch.tanh(t) + 1)(torch.zeros(2, device=device))
    except Exception as error:  # any failure of the compiler stack means: run uncompiled
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        warnings.warn(f"torch.compile does not work on this machine ({message}); running without it", stacklevel=3)
        return fn
    return torch.compile(fn, **options)
