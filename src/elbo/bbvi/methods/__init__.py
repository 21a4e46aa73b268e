"""The methods of ``elbo.fit``: how q is fitted from its starting Gaussian, one file a method.

A method is a function ``run(start: Start) -> MethodResult``. ``Start`` holds the model, the settings, the model's
unconstrained log density (``CountedDensity``: it counts the draws it is evaluated at) and the Gaussian the fit
starts from; ``MethodResult`` holds q (a guide of ``start.config.family``, over z, batch shape ``(1,)``), the trace of
ELBO estimates, whether it converged, why it stopped, and how many draws were left out because ``log p`` was not
finite there. The table of methods is ``elbo.bbvi.config.METHODS``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch

from ..config import FitConfig
from ..model import Model

__all__ = ["CountedDensity", "Start", "MethodResult", "CostWarning", "announce_cost", "NOTICE_SECONDS"]

NOTICE_SECONDS = 10.0  # a stage estimated to take longer says so before it starts


class CostWarning(UserWarning):
    """A stage of ``elbo.fit`` will take long or much memory: what it is and what it costs, before it starts."""


def announce_cost(stage: str, seconds: float, detail: str) -> None:
    """Warn (``CostWarning``) before a stage estimated to take more than ``NOTICE_SECONDS``."""
    if seconds > NOTICE_SECONDS:
        minutes = f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"
        warnings.warn(f"elbo.fit: {stage} will take at least about {minutes} ({detail}); progress is shown",
                      CostWarning, stacklevel=2)


class CountedDensity:
    """The model's unconstrained log density, counting the draws it is evaluated at, with and without gradients."""

    def __init__(self, model: Model):
        self.model, self.num_grad, self.num_density = model, 0, 0
        self.grad_seconds = 0.0  # the wall time of value_and_grad's calls, to estimate a stage's cost

    def __call__(self, z: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_grad_enabled() and z.requires_grad:
            self.num_grad += z.shape[0]
        else:
            self.num_density += z.shape[0]
        return self.model.log_density(z, indices)

    def value_and_grad(self, z: torch.Tensor, indices: torch.Tensor | None = None):
        """The log density ``(S,)`` and its gradient ``(S, D)``, by chunks of rows (``Model.value_and_grad``)."""
        self.num_grad += z.shape[0]
        clock = time.perf_counter()
        try:
            return self.model.value_and_grad(z, indices)
        finally:
            self.grad_seconds += time.perf_counter() - clock

    def seconds_per_gradient(self) -> float:
        """The mean wall time of one draw's gradient on all data so far (0 before the first)."""
        return self.grad_seconds / max(self.num_grad, 1)


@dataclass
class Start:
    """Where a method starts: q's starting Gaussian ``N(loc (D,), Σ)`` given by its sds ``scale (D,)`` and, where it
    has one, a function forming ``Σ (D, D)`` (``None``: Σ is diagonal); and a line saying where it came from.
    ``scale_tril``, Σ's Cholesky factor, is formed on first use only: a method for a large model uses ``scale``.
    ``elbo``: the start's ELBO estimate where it has one; ``reference_elbo``: the ELBO the fit must not end far below
    (``elbo.bbvi.guards``)."""

    model: Model
    config: FitConfig
    log_density: CountedDensity
    loc: torch.Tensor
    scale: torch.Tensor
    covariance: Callable[[], torch.Tensor] | None = None
    origin: str = ""
    elbo: float | None = None
    reference_elbo: float | None = None

    @cached_property
    def scale_tril(self) -> torch.Tensor:
        if self.covariance is None:
            return torch.diag(self.scale)
        return torch.linalg.cholesky(self.covariance())

    def scale_of(self, family: str) -> torch.Tensor:
        """What ``gaussians.make_guide`` places q of ``family`` with, and ADVI whitens by: Σ's Cholesky factor for
        full rank and for a flow on a Gaussian with a covariance (whose couplings then start from the whole
        Gaussian), else sds."""
        full = family == "fullrank" or family == "flow" and self.covariance is not None
        return self.scale_tril if full else self.scale


@dataclass
class MethodResult:
    """What a method returns: q, its ELBO estimates step by step, whether it converged and why it stopped, and the
    number of draws left out of the estimates because ``log p`` was NaN or -inf at them."""

    guide: torch.nn.Module
    elbo_trace: list = field(default_factory=list)
    converged: bool = False
    reason: str = ""
    num_dropped: int = 0
