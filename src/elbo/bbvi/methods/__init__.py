"""The methods of ``elbo.fit``: how q is fitted from its starting Gaussian, one file a method.

A method is a function ``run(start: Start) -> MethodResult``. ``Start`` holds the model, the settings, the model's
unconstrained log density (``CountedDensity``: it counts the draws it is evaluated at) and the Gaussian the fit
starts from; ``MethodResult`` holds q (a guide of ``start.config.family``, over z, batch shape ``(1,)``), the trace of
ELBO estimates, whether it converged, why it stopped, and how many draws were left out because ``log p`` was not
finite there. The table of methods is ``elbo.bbvi.config.METHODS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Start:
    """Where a method starts: q's starting Gaussian ``N(loc (D,), scale_tril scale_trilᵀ)``, and a line saying
    where it came from."""

    model: Model
    config: FitConfig
    log_density: CountedDensity
    loc: torch.Tensor
    scale_tril: torch.Tensor
    origin: str = ""


@dataclass
class MethodResult:
    """What a method returns: q, its ELBO estimates step by step, whether it converged and why it stopped, and the
    number of draws left out of the estimates because ``log p`` was NaN or -inf at them."""

    guide: torch.nn.Module
    elbo_trace: list = field(default_factory=list)
    converged: bool = False
    reason: str = ""
    num_dropped: int = 0
