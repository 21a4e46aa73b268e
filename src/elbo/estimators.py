"""Gradient estimators, as surrogates whose value is the bound and whose gradient is the estimator's.

Each estimator decides three things, and nothing else:

1. how ``z ~ q`` is drawn: ``rsample`` (reparameterized: ``z = loc + scale ⊙ ε``, Kingma & Welling 2013)
   or ``sample`` (no path derivative, for the score function);
2. how ``log q(z)`` enters the log-weights: with q's parameters attached, or cut from the graph, which drops
   the score term ``∇_φ log q_φ(z)`` whose expectation is zero ("sticking the landing", Roeder et al. 2017);
3. how the reduction of the K samples turns into a surrogate loss.

- ``reparam``: plain pathwise gradient.
- ``stl``: pathwise gradient without the score term. Unbiased for the ELBO, and zero variance when q is
  the exact posterior; biased for the IWAE bound with K > 1 (Tucker et al. 2018).
- ``dreg``: doubly reparameterized gradient of the IWAE bound (Tucker et al. 2018): the guide gets
  ``Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ`` and the model its usual ``Σ_k w̃_k ∇_θ log w_k``.
- ``score``: score function (REINFORCE) for latents that cannot be reparameterized, with a leave-one-out
  baseline over the K samples; for the IWAE bound this is VIMCO (Mnih & Rezende 2016).

Every surrogate is written ``value + (surrogate - surrogate.detach())`` where it differs from the value.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import (
    Distribution,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
)

from ._checks import one_of
from .errors import InputError
from .protocols import StopGradient

__all__ = ["ESTIMATORS", "check_estimator", "draw", "sample", "stop_gradient", "mean", "log_mean_exp"]

ESTIMATORS = ("reparam", "stl", "dreg", "score")


def check_estimator(estimator: str, allowed=ESTIMATORS, *, bound: str = "this bound") -> str:
    """``estimator``, or ``InputError`` naming the ones ``bound`` allows."""
    return one_of("estimator", estimator, allowed, context=f"for {bound}")


def stop_gradient(q: Distribution) -> Distribution:
    """The same distribution with its parameters cut from the autograd graph.

    ``stop_gradient(q).log_prob(z)`` still differentiates through ``z`` but not through q's parameters.
    A distribution of its own kind (e.g. the image VAE's ``GaussianChain``) can say how, with a ``stop_gradient()``
    method (``protocols.StopGradient``); so can a transform of a ``TransformedDistribution`` with parameters of its
    own (``families.AffineCoupling``).
    """
    if isinstance(q, StopGradient):
        return q.stop_gradient()
    if isinstance(q, Normal):
        return Normal(q.loc.detach(), q.scale.detach())
    if isinstance(q, Independent):
        return Independent(stop_gradient(q.base_dist), q.reinterpreted_batch_ndims)
    if isinstance(q, MultivariateNormal):
        return MultivariateNormal(q.loc.detach(), scale_tril=q.scale_tril.detach())
    if isinstance(q, LowRankMultivariateNormal):
        return LowRankMultivariateNormal(q.loc.detach(), q.cov_factor.detach(), q.cov_diag.detach())
    if isinstance(q, TransformedDistribution):
        transforms = []
        for t in q.transforms:
            if isinstance(t, StopGradient):
                transforms.append(t.stop_gradient())
            elif not any(isinstance(v, torch.Tensor) and v.requires_grad for v in vars(t).values()):
                transforms.append(t)
            else:
                raise InputError(f"stop_gradient: cannot cut the parameters of transform {type(t).__name__}")
        return TransformedDistribution(stop_gradient(q.base_dist), transforms)
    raise InputError(
        f"estimators 'stl' and 'dreg' need a guide returning Normal, Independent, MultivariateNormal, "
        f"LowRankMultivariateNormal or a Flow; got {type(q).__name__}"
    )


def draw(q: Distribution, num_samples: int, estimator: str) -> torch.Tensor:
    """``z`` of shape ``(K, *q.batch_shape, *q.event_shape)``, with the path derivative (``rsample``) or, for
    ``score``, without it (``sample``)."""
    if estimator == "score":
        return q.sample((num_samples,))
    if not q.has_rsample:
        raise InputError(f"estimator={estimator!r} needs a reparameterizable guide; "
                         f"{type(q).__name__} has no rsample: use estimator='score'", argument="estimator")
    return q.rsample((num_samples,))


def sample(q: Distribution, num_samples: int, estimator: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``z`` of shape ``(K, *q.batch_shape, *q.event_shape)`` and ``log q(z)`` of shape ``(K, B)``,
    each as the estimator needs them."""
    z = draw(q, num_samples, estimator)
    if estimator in ("reparam", "score"):
        return z, q.log_prob(z)
    return z, stop_gradient(q).log_prob(z)  # stl, dreg: keep the path through z, drop the score term


def _leave_one_out_mean(f: torch.Tensor) -> torch.Tensor:
    """``b_k = (Σ_j f_j - f_k) / (K - 1)`` over the sample dimension 0."""
    return (f.sum(0, keepdim=True) - f) / (f.shape[0] - 1)


def mean(f: torch.Tensor, log_q: torch.Tensor, estimator: str) -> torch.Tensor:
    """Surrogate for ``E_q[f(z)]`` from K samples: value ``f.mean(0)``, shape ``(B,)``.

    ``f`` and ``log_q`` have shape ``(K, B)``. For ``score``, the gradient adds
    ``(1/K) Σ_k (f_k - b_k) ∇ log q(z_k)`` with the leave-one-out baseline ``b_k``.
    """
    value = f.mean(0)
    if estimator != "score":
        return value
    # detach: the learning signal multiplies the score as a constant; its own gradient is in `value`.
    signal = (f - _leave_one_out_mean(f)).detach()
    surrogate = (signal * log_q).mean(0)
    return value + (surrogate - surrogate.detach())


def log_mean_exp(log_w: torch.Tensor, log_q: torch.Tensor, z: torch.Tensor, estimator: str) -> torch.Tensor:
    """Surrogate for ``log (1/K) Σ_k w_k`` (the IWAE bound), shape ``(B,)``; ``log_w, log_q: (K, B)``."""
    num_samples = log_w.shape[0]
    value = torch.logsumexp(log_w, 0) - math.log(num_samples)
    if estimator == "dreg" and z.requires_grad:
        # ∂value/∂log w_k = w̃_k already; scaling the gradient that reaches z_k by w̃_k once more gives the
        # guide its w̃_k² weights while the model's gradient (which does not pass through z) keeps w̃_k.
        # detach: the weights are constants of the estimator, not functions to differentiate.
        weights = torch.softmax(log_w.detach(), 0).reshape(log_w.shape + (1,) * (z.dim() - log_w.dim()))
        z.register_hook(lambda grad: grad * weights)
    if estimator == "score":
        # VIMCO: the signal of sample k is L - L_{-k}, where L_{-k} replaces log w_k by the mean of the others.
        # detach: the signals are constants multiplying the score; the pathwise part is in `value`.
        log_w_ = log_w.detach()
        others = log_w_.unsqueeze(0).expand(num_samples, *log_w_.shape).clone()  # (K, K, B): row k, sample j
        eye = torch.eye(num_samples, dtype=torch.bool, device=log_w.device)
        others[eye] = _leave_one_out_mean(log_w_).reshape(num_samples, -1)
        log_mean_without = torch.logsumexp(others, 1) - math.log(num_samples)
        signal = value.detach() - log_mean_without
        surrogate = (signal * log_q).sum(0)
        return value + (surrogate - surrogate.detach())
    return value
