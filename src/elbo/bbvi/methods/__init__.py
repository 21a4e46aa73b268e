"""The methods of ``elbo.fit``: how q is fitted from its starting Gaussian, one file a method.

A method is a function ``run(start: Start) -> MethodResult``. ``Start`` holds the model, the settings, the model's
unconstrained log density (``CountedDensity``: it counts the draws it is evaluated at) and the Gaussian the fit
starts from; ``MethodResult`` holds q (a guide of ``start.config.family``, over z, batch shape ``(1,)``), the trace of
ELBO estimates, whether it converged, why it stopped, and how many draws were left out because ``log p`` was not
finite there. The table of methods is ``elbo.bbvi.config.METHODS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch

from ..config import FitConfig
from ..model import Model

__all__ = ["CountedDensity", "Start", "MethodResult"]


class CountedDensity:
    """The model's unconstrained log density, counting the draws it is evaluated at, with and without gradients."""

    def __init__(self, model: Model):
        self.model, self.num_grad, self.num_density = model, 0, 0

    def __call__(self, z: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_grad_enabled() and z.requires_grad:
            self.num_grad += z.shape[0]
        else:
            self.num_density += z.shape[0]
        return self.model.log_density(z, indices)

    def value_and_grad(self, z: torch.Tensor, indices: torch.Tensor | None = None):
        """The log density ``(S,)`` and its gradient ``(S, D)``, by chunks of rows (``Model.value_and_grad``)."""
        self.num_grad += z.shape[0]
        return self.model.value_and_grad(z, indices)


@dataclass
class Start:
    """Where a method starts: q's starting Gaussian ``N(loc (D,), Σ)`` given by its sds ``scale (D,)`` and, where it
    has one, a function forming ``Σ (D, D)`` (``None``: Σ is diagonal); and a line saying where it came from.
    ``scale_tril``, Σ's Cholesky factor, is formed on first use only: a method for a large model uses ``scale``."""

    model: Model
    config: FitConfig
    log_density: CountedDensity
    loc: torch.Tensor
    scale: torch.Tensor
    covariance: Callable[[], torch.Tensor] | None = None
    origin: str = ""

    @cached_property
    def scale_tril(self) -> torch.Tensor:
        if self.covariance is None:
            return torch.diag(self.scale)
        return torch.linalg.cholesky(self.covariance())

    def scale_of(self, family: str) -> torch.Tensor:
        """What ``gaussians.make_guide`` places q of ``family`` with: Σ's Cholesky factor for full rank, else sds."""
        return self.scale_tril if family == "fullrank" else self.scale


@dataclass
class MethodResult:
    """What a method returns: q, its ELBO estimates step by step, whether it converged and why it stopped, and the
    number of draws left out of the estimates because ``log p`` was NaN or -inf at them."""

    guide: torch.nn.Module
    elbo_trace: list = field(default_factory=list)
    converged: bool = False
    reason: str = ""
    num_dropped: int = 0
