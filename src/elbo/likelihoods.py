"""Likelihood heads (registered in ``elbo.registry.LIKELIHOODS``): the decoder's output ``h`` of shape ``(..., D)``
becomes ``p(x|z)``, a torch Distribution with
batch shape ``h.shape[:-1]`` and event shape ``(D,)``.

- ``BernoulliLikelihood``: ``p(x|z) = Π_i Bernoulli(x_i; sigmoid(h_i))``, built from the logits
  (``log p = Σ_i x_i h_i - softplus(h_i)``, stable for any ``h``; never sigmoid followed by cross-entropy), as
  ``PixelBernoulli``, whose ``log_prob`` takes one pass fewer over the logits than torch's (see there).
- ``GaussianLikelihood``: ``p(x|z) = N(x; h, σ² I)`` with ``σ`` a fixed hyperparameter (as in Kingma &
  Welling 2013's derivation), one learned ``σ`` shared by every pixel, or one learned ``σ_i`` per pixel.
- ``MultinomialLikelihood``: bags of words, ``log p(x|z) = Σ_w x_w log softmax(h)_w`` (a ``DocumentMultinomial``):
  the multinomial log-likelihood of the word counts without the multinomial coefficient, which does not depend on
  ``z``; ``log_multinomial_coefficient(x)`` adds it back for an exact ``log p(x)``.

A head is built from the data's dimension and the model kind's config by ``head.from_config(dim, config)``;
``likelihood_head(name, dim, config)`` looks the head up by name. ``check(x)`` refuses data the head cannot score;
``output_bias(mean_x)`` is where the decoder's last bias starts.

Distributions are built with ``validate_args=False``: the data is checked once (``check``), not on every step,
because each validation is a host synchronisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal, constraints

from ._checks import check_positive_float, one_of
from .errors import InputError
from .registry import GAUSSIAN_SCALES, LIKELIHOODS

__all__ = ["PixelBernoulli", "BernoulliLikelihood", "GaussianLikelihood", "DocumentMultinomial",
           "MultinomialLikelihood", "log_multinomial_coefficient", "likelihood_head"]


def check_finite(x: torch.Tensor) -> None:
    """Refuse NaN or infinite pixels, naming how many and where the first one is."""
    bad = ~torch.isfinite(x)
    if bad.any():
        first = int(bad.reshape(len(x), -1).any(1).nonzero()[0])
        raise InputError(f"the data has {int(bad.sum())} NaN or infinite pixel values (first in image {first}): "
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

    @classmethod
    def from_config(cls, dim: int, config) -> BernoulliLikelihood:
        return cls()

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
            raise InputError(f"a Bernoulli likelihood needs pixel values in [0, 1], but {outside} values lie outside "
                             f"(min {low:g}, max {high:g}): rescale the data or use likelihood='gaussian'")


class GaussianLikelihood(nn.Module):
    """``p(x|z) = N(h, σ² I)``; ``scale`` is ``"fixed"`` (``σ = fixed_scale``, not learned), ``"shared"``
    (one learned ``σ``) or ``"per_pixel"`` (``σ_i`` learned for each of the ``dim`` pixels)."""

    def __init__(self, dim: int, *, scale: str = "per_pixel", fixed_scale: float = 1.0):
        super().__init__()
        one_of("scale", scale, GAUSSIAN_SCALES)
        check_positive_float(fixed_scale=fixed_scale)
        self.scale = scale
        log_scale = torch.full((dim,) if scale == "per_pixel" else (), math.log(fixed_scale))
        if scale == "fixed":
            self.register_buffer("log_scale", log_scale)
        else:
            self.log_scale = nn.Parameter(log_scale)

    @classmethod
    def from_config(cls, dim: int, config) -> GaussianLikelihood:
        """``σ`` as ``config.gaussian_scale`` and ``config.fixed_scale`` say."""
        return cls(dim, scale=config.gaussian_scale, fixed_scale=config.fixed_scale)

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


class DocumentMultinomial(Distribution):
    """Word counts ``x: (..., V)`` of documents of any length: ``log_prob(x) = Σ_w x_w log softmax(logits)_w``, the
    multinomial log-likelihood without its coefficient ``N! / Π_w x_w!`` (torch's ``Multinomial`` takes one
    ``total_count`` for all documents; the coefficient does not depend on ``z``, so the bounds' gradients are the
    same and ``log_multinomial_coefficient(x)`` adds it back). Batch shape ``logits.shape[:-1]``, event ``(V,)``;
    ``x: (B, V)`` broadcasts over leading sample dimensions of the logits (which must be finite).

    ``mean`` (also ``probs``) is ``softmax(logits)``, the word distribution: a document of ``N`` words has expected
    counts ``N * mean``. There is no ``sample``: the length of a document is not part of the model.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.nonnegative_integer, 1)

    def __init__(self, logits: torch.Tensor):
        if logits.dim() < 1:
            raise InputError("logits must have shape (..., V), got a scalar", argument="logits")
        self.logits = logits
        super().__init__(batch_shape=logits.shape[:-1], event_shape=logits.shape[-1:], validate_args=False)

    @property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, -1)

    @property
    def mean(self) -> torch.Tensor:
        return self.probs

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return (x * torch.log_softmax(self.logits, -1)).sum(-1)

    def expand(self, batch_shape, _instance=None) -> DocumentMultinomial:
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(DocumentMultinomial, _instance)
        new.logits = self.logits.expand(*batch_shape, *self.event_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        return new


def log_multinomial_coefficient(x: torch.Tensor) -> torch.Tensor:
    """``log N! - Σ_w log x_w!`` per document (``N = Σ_w x_w``), shape ``x.shape[:-1]``: what
    ``DocumentMultinomial.log_prob`` leaves out of the multinomial log-likelihood."""
    return torch.lgamma(x.sum(-1) + 1) - torch.lgamma(x + 1).sum(-1)


def _first_bad_document(bad: torch.Tensor) -> int:
    return int(bad.reshape(len(bad), -1).any(1).nonzero()[0])


class MultinomialLikelihood(nn.Module):
    """``p(x|z) = DocumentMultinomial(logits=h)``: word counts drawn from ``softmax(h)``, the document length given. Its
    output bias starts at the log of the mean word frequencies."""

    @classmethod
    def from_config(cls, dim: int, config) -> MultinomialLikelihood:
        return cls()

    def forward(self, logits: torch.Tensor) -> Distribution:
        return DocumentMultinomial(logits)

    def output_bias(self, mean_x: torch.Tensor) -> torch.Tensor:
        """``log(mean_x / Σ mean_x)``, clamped at ``log 1e-8``: a word no training document uses would otherwise
        start at ``-inf``."""
        return torch.log((mean_x / mean_x.sum(-1, keepdim=True).clamp_min(1e-30)).clamp_min(1e-8))

    def check(self, x: torch.Tensor) -> None:
        """The data must be finite, non-negative, whole-number word counts, and no document empty."""
        bad = ~torch.isfinite(x)
        if bad.any():
            raise InputError(f"the data has {int(bad.sum())} NaN or infinite word counts (first in document "
                             f"{_first_bad_document(bad)}): clean or drop those documents")
        for bad, what, fix in ((x < 0, "negative", "word counts cannot be negative"),
                               (x != x.round(), "not whole numbers", "use raw counts, not frequencies or tf-idf")):
            if bad.any():
                raise InputError(f"a multinomial likelihood needs word counts, but {int(bad.sum())} values are {what} "
                                 f"(first in document {_first_bad_document(bad)}): {fix}")
        empty = x.reshape(len(x), -1).sum(1) == 0
        if empty.any():
            raise InputError(f"{int(empty.sum())} documents have no words (first: document "
                             f"{_first_bad_document(empty)}): drop empty documents")


def likelihood_head(name: str, dim: int, config) -> nn.Module:
    """The head registered as ``name`` (``elbo.registry.LIKELIHOODS``) for ``dim``-dimensional data."""
    return LIKELIHOODS[name].from_config(dim, config)
