"""Lower bounds on ``log p(x)``, all per data point (shape ``(B,)``), in nats, not reduced, not negated.

A *model* has ``prior()`` (a Distribution over ``z``) and ``likelihood(z)`` (a Distribution over ``x``),
or else only ``log_prob(x, z)`` (the log joint, shape ``(K, B)``). A *guide* maps ``x`` of shape
``(B, ...)`` to ``q(z|x)``, a Distribution with ``batch_shape == (B,)``.

Everything is a reduction of the log-weights ``log w_k = log p(x, z_k) - log q(z_k|x)``, ``z_k ~ q(z|x)``:

- ``elbo``:  ``E_q[log p(x,z) - log q(z|x)]``, in three forms (Jordan et al. 1999; Kingma & Welling 2013);
- ``iwae``:  ``log (1/K) Σ_k w_k`` (Burda et al. 2015), with ``L_1 = ELBO ≤ L_K ≤ L_{K+1} → log p(x)``;
- ``renyi``: ``1/(1-α) log (1/K) Σ_k w_k^(1-α)`` (Li & Turner 2016): α = 0 is IWAE, α → 1 the ELBO.

The value of each is the Monte Carlo estimate of the bound; its gradient is the chosen estimator's
(see ``elbo.estimators``).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, kl_divergence

from . import estimators
from ._checks import check_finite, check_int_at_least, one_of
from .errors import InputError
from .protocols import LatentModel

__all__ = ["log_weights", "elbo", "iwae", "renyi", "log_joint", "FORMS"]

FORMS = ("analytic", "mc", "entropy")


def log_joint(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``log p(x, z)`` of shape ``(K, B)`` for ``z: (K, B, ...)`` and ``x: (B, ...)``."""
    if isinstance(model, LatentModel):
        return model.prior().log_prob(z) + _log_likelihood(model, x, z)
    return model.log_prob(x, z)


def _log_likelihood(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``log p(x | z)`` of shape ``(K, B)``."""
    likelihood = model.likelihood(z)
    event_shape = tuple(likelihood.event_shape)
    if tuple(x.shape[1:]) != event_shape:
        raise InputError(f"x has shape {tuple(x.shape)} but model.likelihood(z) has event_shape "
                         f"{event_shape}: expected x of shape (B, {', '.join(map(str, event_shape))})", argument="x")
    return likelihood.log_prob(x)


def _check_inputs(x, num_samples: int, validate_args: bool) -> None:
    check_int_at_least("num_samples", num_samples, 1)
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x must be a tensor of shape (B, ...) with a batch dimension first, got {shape}",
                         argument="x")
    if validate_args:
        check_finite("x", x)


def _guide(guide, x: torch.Tensor) -> Distribution:
    q = guide(x)
    if not isinstance(q, Distribution):
        raise InputError(f"guide(x) must return a torch Distribution, got {type(q).__name__}")
    if tuple(q.batch_shape) != (x.shape[0],):
        raise InputError(f"guide(x) returned a distribution with batch_shape {tuple(q.batch_shape)}; "
                         f"expected ({x.shape[0]},) to match x of shape {tuple(x.shape)}")
    return q


def _check_log_w(log_w: torch.Tensor, num_samples: int, batch_size: int) -> torch.Tensor:
    if tuple(log_w.shape) != (num_samples, batch_size):
        raise InputError(f"log p(x, z) - log q(z|x) has shape {tuple(log_w.shape)}, expected (K, B) = "
                         f"({num_samples}, {batch_size}): check the event shapes of the prior and the guide")
    return log_w


def _sample(guide, x, num_samples, estimator, validate_args):
    _check_inputs(x, num_samples, validate_args)
    q = _guide(guide, x)
    z, log_q = estimators.sample(q, num_samples, estimator)
    return q, z, log_q


def _log_weights(model, guide, x, num_samples, estimator, validate_args):
    q, z, log_q = _sample(guide, x, num_samples, estimator, validate_args)
    log_w = _check_log_w(log_joint(model, x, z) - log_q, num_samples, x.shape[0])
    return q, z, log_q, log_w


def log_weights(model, guide, x: torch.Tensor, num_samples: int = 1, *, estimator: str = "reparam",
                validate_args: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``log w_k = log p(x, z_k) - log q(z_k|x)`` with ``z_k ~ q(z|x)``.

    Returns ``log_w`` of shape ``(K, B)`` and ``z`` of shape ``(K, B, D)``. With ``estimator="stl"`` or
    ``"dreg"``, ``log q`` is taken with q's parameters cut from the graph; with ``"score"``, ``z`` is drawn
    without a path derivative.
    """
    estimators.check_estimator(estimator)
    _, z, _, log_w = _log_weights(model, guide, x, num_samples, estimator, validate_args)
    return log_w, z


def elbo(model, guide, x: torch.Tensor, num_samples: int = 1, *, form: str = "analytic",
         estimator: str = "reparam", validate_args: bool = True) -> torch.Tensor:
    """The evidence lower bound ``E_q[log p(x,z) - log q(z|x)] = log p(x) - KL(q(z|x) ‖ p(z|x))``.

    ``form`` picks the estimate of the same quantity (all three agree in expectation):

    - ``"analytic"``: ``E_q[log p(x|z)] - KL(q(z|x) ‖ p(z))`` with the registered closed-form KL
      (Monte Carlo ``log q - log p`` where torch has none, e.g. for a ``Flow``);
    - ``"mc"``: ``E_q[log p(x,z) - log q(z|x)]``, the mean of the log-weights;
    - ``"entropy"``: ``E_q[log p(x,z)] + H[q(z|x)]`` with the closed-form entropy where there is one.

    ``estimator``: ``"reparam"``, ``"stl"`` (form ``"mc"`` only: it is about the ``log q`` term) or
    ``"score"`` (``num_samples >= 2``, leave-one-out baseline). Returns shape ``(B,)``.
    """
    one_of("form", form, FORMS)
    estimators.check_estimator(estimator, ("reparam", "stl", "score"), bound="elbo")
    if estimator == "stl" and form != "mc":
        raise InputError(f"estimator='stl' drops the score term of log q, so it needs form='mc', got form={form!r}",
                         argument="form")
    if form == "analytic" and not isinstance(model, LatentModel):
        raise InputError(f"form='analytic' needs a model with prior() and likelihood(z); {type(model).__name__} "
                         f"gives only a log joint density: use form='mc' or form='entropy'", argument="form")
    _check_score_samples(estimator, num_samples)
    if form == "analytic":  # the decoder runs once: log p(x|z) is all the samples are needed for
        _check_inputs(x, num_samples, validate_args)
        q = _guide(guide, x)
        minus_kl = _closed_form(lambda: -kl_divergence(q, model.prior()))
        if minus_kl is None or estimator == "score":  # these need log q(z|x) of the samples
            z, log_q = estimators.sample(q, num_samples, estimator)
        else:  # the closed-form KL is all of q's density the bound needs: no log q(z|x) to compute or differentiate
            z, log_q = estimators.draw(q, num_samples, estimator), None
        log_likelihood = _check_log_w(_log_likelihood(model, x, z), num_samples, x.shape[0])
        if minus_kl is None:  # no registered KL: log p(x|z) + log p(z) - log q(z|x), estimated with the rest
            return estimators.mean(log_likelihood + model.prior().log_prob(z) - log_q, log_q, estimator)
        return estimators.mean(log_likelihood, log_q, estimator) + minus_kl
    q, z, log_q, log_w = _log_weights(model, guide, x, num_samples, estimator, validate_args)
    if form == "mc":
        return estimators.mean(log_w, log_q, estimator)
    entropy = _closed_form(q.entropy)
    if entropy is None:  # no closed-form entropy: estimate it by -log q(z|x)
        return estimators.mean(log_w, log_q, estimator)
    return estimators.mean(log_w + log_q, log_q, estimator) + entropy


def _closed_form(term):
    try:
        return term()
    except NotImplementedError:
        return None


def _check_score_samples(estimator: str, num_samples: int) -> None:
    if estimator == "score" and isinstance(num_samples, int) and num_samples < 2:
        raise InputError(f"estimator='score' uses a leave-one-out baseline over the samples and needs "
                         f"num_samples >= 2, got {num_samples}", argument="num_samples")


def iwae(model, guide, x: torch.Tensor, num_samples: int = 1, *, estimator: str = "reparam",
         validate_args: bool = True) -> torch.Tensor:
    """The importance weighted bound ``L_K = log (1/K) Σ_k p(x, z_k) / q(z_k|x)`` (Burda et al. 2015).

    ``estimator``: ``"reparam"``, ``"stl"`` (biased for K > 1), ``"dreg"`` (Tucker et al. 2018) or
    ``"score"`` (VIMCO, ``num_samples >= 2``). With K = 1 it is the ELBO on the same sample. Returns ``(B,)``.
    """
    estimators.check_estimator(estimator, bound="iwae")
    _check_score_samples(estimator, num_samples)
    return iwae_and_log_weights(model, guide, x, num_samples, estimator, validate_args)[0]


def iwae_and_log_weights(model, guide, x, num_samples, estimator, validate_args):
    """``iwae`` (its estimator not checked) and the log-weights ``(K, B)`` it reduces, for a caller that also
    wants their mean, the ELBO of the same draws (``elbo.train`` logs both)."""
    _, z, log_q, log_w = _log_weights(model, guide, x, num_samples, estimator, validate_args)
    return estimators.log_mean_exp(log_w, log_q, z, estimator), log_w


def renyi(model, guide, x: torch.Tensor, num_samples: int = 1, *, alpha: float = 0.5, estimator: str = "reparam",
          validate_args: bool = True) -> torch.Tensor:
    """The variational Rényi bound ``L_α = 1/(1-α) log (1/K) Σ_k w_k^(1-α)`` (Li & Turner 2016).

    α = 0 is the IWAE bound; α = 1 is the ELBO (the limit, taken exactly). For α ≥ 0 it lower-bounds
    ``log p(x)`` in expectation. ``estimator``: ``"reparam"`` or ``"stl"``. Returns ``(B,)``.
    """
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
        raise InputError(f"alpha must be a finite number >= 0, got {alpha!r}", argument="alpha")
    estimators.check_estimator(estimator, ("reparam", "stl"), bound="renyi")
    _, _, _, log_w = _log_weights(model, guide, x, num_samples, estimator, validate_args)
    if alpha == 1:
        return log_w.mean(0)
    return (torch.logsumexp((1 - alpha) * log_w, 0) - math.log(num_samples)) / (1 - alpha)
