"""Decoder heads: the decoder's output ``h`` of shape ``(..., D)`` becomes ``p(x|z)``, a torch Distribution with
batch shape ``h.shape[:-1]`` and event shape ``(D,)``.

- ``BernoulliLikelihood``: ``p(x|z) = Π_i Bernoulli(x_i; sigmoid(h_i))``, built from the logits
  (``log p = Σ_i x_i h_i - softplus(h_i)``, stable for any ``h``; never sigmoid followed by cross-entropy), as
  ``PixelBernoulli``, whose ``log_prob`` takes one pass fewer over the logits than torch's (see there).
- ``GaussianLikelihood``: ``p(x|z) = N(x; h, σ² I)`` with ``σ`` a fixed hyperparameter (as in Kingma &
  Welling 2013's derivation), one learned ``σ`` shared by every pixel, or one learned ``σ_i`` per pixel.

Distributions are built with ``validate_args=False``: the data is checked once (``check``), not on every step,
because each validation is a host synchronisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

__all__ = ["LIKELIHOODS", "SCALES", "PixelBernoulli", "BernoulliLikelihood", "GaussianLikelihood", "likelihood_head"]

LIKELIHOODS = ("bernoulli", "gaussian")
SCALES = ("fixed", "shared", "per_pixel")


def check_finite(x: torch.Tensor) -> None:
    """Refuse NaN or infinite pixels, naming how many and where the first one is."""
    bad = ~torch.isfinite(x)
    if bad.any():
        first = int(bad.reshape(len(x), -1).any(1).nonzero()[0])
        raise ValueError(f"the data has {int(bad.sum())} NaN or infinite pixel values (first in image {first}): "
                         f"clean or drop those images")


class PixelBernoulli(Independent):
    """``Independent(Bernoulli(logits=h), 1)``, whose ``log_prob`` is ``Σ_i x_i h_i - softplus(h_i)`` computed as
    ``-Σ_i BCE_with_logits(h_i, x_i)``, the same function torch's ``Bernoulli.log_prob`` calls, with the sign
    changed after the sum over pixels rather than before it: one pass fewer over the ``(K, B, D)`` logits forward
    and one backward. (On a CPU, eager PyTorch spends four more passes inside the cross-entropy; under
    ``torch.compile`` the whole log-likelihood and its sum become one loop over the logits.)
    """

    def __init__(self, logits: torch.Tensor):
        super().__init__(Bernoulli(logits=logits, validate_args=False), 1, validate_args=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.base_dist.logits  # (..., D), x: (B, D) broadcast over the leading sample dimensions
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


class BernoulliLikelihood(nn.Module):
    """``p(x|z) = Bernoulli(logits=h)`` (a ``PixelBernoulli``). Its output bias starts at
    ``logit(mean training pixel)``."""

    def forward(self, logits: torch.Tensor) -> Distribution:
        return PixelBernoulli(logits)

    def output_bias(self, mean_x: torch.Tensor) -> torch.Tensor:
        # clamp: pixels that are always 0 (MNIST's border) would otherwise start at logit -inf
        return torch.logit(mean_x.clamp(1e-3, 1 - 1e-3))

    def check(self, x: torch.Tensor) -> None:
        """The data must be finite and in ``[0, 1]`` (binary pixels, or grey levels read as probabilities)."""
        check_finite(x)
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 1:
            outside = int(((x < 0) | (x > 1)).sum())
            raise ValueError(f"a Bernoulli likelihood needs pixel values in [0, 1], but {outside} values lie outside "
                             f"(min {low:g}, max {high:g}): rescale the data or use likelihood='gaussian'")


class GaussianLikelihood(nn.Module):
    """``p(x|z) = N(h, σ² I)``; ``scale`` is ``"fixed"`` (``σ = fixed_scale``, not learned), ``"shared"``
    (one learned ``σ``) or ``"per_pixel"`` (``σ_i`` learned for each of the ``dim`` pixels)."""

    def __init__(self, dim: int, *, scale: str = "per_pixel", fixed_scale: float = 1.0):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(map(repr, SCALES))}, got {scale!r}")
        if not (isinstance(fixed_scale, (int, float)) and math.isfinite(fixed_scale) and fixed_scale > 0):
            raise ValueError(f"fixed_scale must be a finite number > 0, got {fixed_scale!r}")
        self.scale = scale
        log_scale = torch.full((dim,) if scale == "per_pixel" else (), math.log(fixed_scale))
        if scale == "fixed":
            self.register_buffer("log_scale", log_scale)
        else:
            self.log_scale = nn.Parameter(log_scale)

    def forward(self, loc: torch.Tensor) -> Distribution:
        return Independent(Normal(loc, self.log_scale.exp(), validate_args=False), 1)

    def output_bias(self, mean_x: torch.Tensor) -> torch.Tensor:
        return mean_x

    def init_from_data(self, x: torch.Tensor) -> None:
        """A learned ``σ`` starts at the data's standard deviation (over all pixels, or per pixel)."""
        if self.scale == "fixed":
            return
        std = x.std(0) if self.scale == "per_pixel" else x.std()
        with torch.no_grad():
            self.log_scale.copy_(std.clamp_min(1e-2).log())  # clamp: constant pixels would start at σ = 0

    def check(self, x: torch.Tensor) -> None:
        check_finite(x)


def likelihood_head(kind: str, dim: int, *, scale: str = "per_pixel", fixed_scale: float = 1.0) -> nn.Module:
    if kind == "bernoulli":
        return BernoulliLikelihood()
    if kind == "gaussian":
        return GaussianLikelihood(dim, scale=scale, fixed_scale=fixed_scale)
    raise ValueError(f"likelihood must be one of {', '.join(map(repr, LIKELIHOODS))}, got {kind!r}")
