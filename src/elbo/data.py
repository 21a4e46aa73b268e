"""Passes over a data set that any model's code shares: checked once (``check_data``), in slices and batches of rows
(with a progress bar), and the memory one draw of a gradient step costs per point (``graph_bytes_per_draw``), to
refuse a step that cannot fit before it is tried."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from . import bounds
from ._checks import check_finite
from .protocols import ChecksData, LatentModel

__all__ = ["check_data", "slices", "batches", "graph_bytes_per_draw"]


def graph_bytes_per_draw(model, x: torch.Tensor) -> float:
    """The bytes of the tensors that one draw of ``z`` for one point saves for the backward pass of the ELBO,
    measured on the points ``x`` with fixed noise (the caller's random stream left alone): what a gradient step costs
    per draw, to refuse one that cannot fit before it is tried."""
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    device = x.device
    form = "analytic" if isinstance(model, LatentModel) else "mc"
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        torch.manual_seed(0)
        bounds.elbo(model, model.guide, x, 1, form=form, validate_args=False).sum()
    return sum(saved) / len(x)


def check_data(model, data: torch.Tensor) -> None:
    """Check the whole data set once, so that the batches can skip validation (a host sync each): by the model's
    own ``check_data`` where it has one, else for finite values."""
    if isinstance(model, ChecksData):
        model.check_data(data)
    else:
        check_finite("the data", data)


def slices(size: int, step: int, *, progress: bool = False, what: str = ""):
    """The slices of ``range(size)`` in steps of ``step``, with a progress bar named ``what`` if asked."""
    starts = tqdm(range(0, size, step), desc=what, disable=not progress, leave=False)
    return (slice(start, start + step) for start in starts)


def batches(data: torch.Tensor, batch_size: int, progress: bool = False, what: str = ""):
    """``data`` in batches of ``batch_size`` rows."""
    return (data[rows] for rows in slices(len(data), batch_size, progress=progress, what=what))
