"""What a fit changes in torch's global state, changed only inside it: the generator's seed and the default dtype."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["seeded", "default_dtype"]


@contextlib.contextmanager
def seeded(seed: int | None):
    """Draw from torch's generator seeded with ``seed`` inside, leaving the caller's generator as it was;
    ``None``: the caller's generator, unchanged."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype | None):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or previous)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
