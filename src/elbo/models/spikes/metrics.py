"""The measurements of a model of spike counts, as small pure functions: tensors in, floats out.

Counts ``y: (M, T, N)`` (trials × bins × neurons), rates ``r`` of the same shape in spikes/s, and the bin size
``Δ`` in seconds, so that a bin's Poisson mean is ``λ = r Δ``.

* ``poisson_log_likelihood``: ``Σ log Poisson(y | r Δ)``, nats.
* ``co_bps``: co-smoothing bits per spike of the held-out neurons (Pei et al. 2021, Neural Latents Benchmark):
  ``(log L_model - log L_null) / (Σ y · ln 2)``, the null model giving each neuron its mean rate over the training
  trials.
* ``bits_per_spike``: the same ratio for whole trials, from each trial's importance-sampled ``log p(y)``.
* ``rate_r2``: R² of inferred against true rates, pooled over trials and bins, variance-weighted over neurons.
* ``latent_r2``: R² of the true latents from the inferred ones after the best affine map, fitted on half of the
  bins and scored on the other half.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..._checks import check_positive_float, check_seed
from ...errors import InputError

__all__ = ["poisson_log_likelihood", "null_rates", "co_bps", "bits_per_spike", "rate_r2", "latent_r2"]


def _tensor(name: str, values, dim: int | None = 3) -> torch.Tensor:
    values = torch.as_tensor(values).detach().cpu().to(torch.float64)
    if (dim is not None and values.dim() != dim) or values.numel() == 0:
        raise InputError(f"{name} must be a non-empty {dim}-D tensor, got shape {tuple(values.shape)}", argument=name)
    if torch.isnan(values).any():
        raise InputError(f"{name} must not hold NaN, got {int(torch.isnan(values).sum())}", argument=name)
    return values


def _same_shape(**tensors) -> None:
    """The tensors' shapes must equal the first's; ``train_counts`` (other trials) only past the trials."""
    (first, a), *rest = tensors.items()
    for name, b in rest:
        skip = 1 if name == "train_counts" else 0
        if a.shape[skip:] != b.shape[skip:]:
            raise InputError(f"{name} has shape {tuple(b.shape)}, which does not match {first} "
                             f"{tuple(a.shape)}", argument=name)


def poisson_log_likelihood(counts, rates, *, bin_size: float) -> float:
    """``Σ_{m,t,n} [y log(r Δ) - r Δ - log y!]``, nats, for counts and rates (spikes/s) of the same shape ``(M, T, N)``
    (a zero rate where ``y > 0`` gives ``-inf``)."""
    check_positive_float(bin_size=bin_size)
    y, r = _tensor("counts", counts), _tensor("rates", rates)
    _same_shape(counts=y, rates=r)
    if (r < 0).any():
        raise InputError(f"rates must be >= 0, got {int((r < 0).sum())} negative", argument="rates")
    mean = r * bin_size
    return float((torch.xlogy(y, mean) - mean - torch.lgamma(y + 1)).sum())


def null_rates(train_counts, *, bin_size: float) -> torch.Tensor:
    """Each neuron's mean rate over the training trials and bins, ``Σ_{m,t} y_mtn / (M T Δ)``, spikes/s, ``(N,)``."""
    check_positive_float(bin_size=bin_size)
    y = _tensor("train_counts", train_counts)
    return y.mean((0, 1)) / bin_size


def _null_log_likelihood(counts: torch.Tensor, train_counts, bin_size: float) -> float:
    rates = null_rates(train_counts, bin_size=bin_size)
    if rates.shape[-1] != counts.shape[-1]:
        raise InputError(f"train_counts has {rates.shape[-1]} neurons, counts {counts.shape[-1]}",
                         argument="train_counts")
    silent = (rates == 0) & (counts.sum((0, 1)) > 0)
    if silent.any():
        raise InputError(f"train_counts: neuron {int(silent.nonzero()[0])} never fires in the training trials but "
                         f"does in counts: its null rate is 0 and the bits per spike infinite", argument="train_counts")
    return poisson_log_likelihood(counts, rates.expand(counts.shape), bin_size=bin_size)


def _per_spike(gain_nats: float, counts: torch.Tensor) -> float:
    spikes = float(counts.sum())
    if spikes == 0:
        raise InputError("counts hold no spike: bits per spike are undefined", argument="counts")
    return gain_nats / (spikes * math.log(2))


def co_bps(counts, rates, train_counts, *, bin_size: float) -> float:
    """Co-smoothing bits per spike (Pei et al. 2021): ``(NLL_null - NLL_model) / (Σ y · ln 2)``.

    ``counts``: the held-out neurons' counts in the evaluated trials ``(M, T, N_out)``; ``rates``: the model's
    predictions of their rates (spikes/s, same shape), from the held-in neurons alone; ``train_counts``: the
    held-out neurons' counts in the training trials ``(M', T, N_out)``, whose mean rate per neuron is the null model.
    Positive when the model predicts better than each neuron's constant mean rate; 0 for the null model itself.
    """
    y, r = _tensor("counts", counts), _tensor("rates", rates)
    _same_shape(counts=y, rates=r, train_counts=_tensor("train_counts", train_counts))
    gain = poisson_log_likelihood(y, r, bin_size=bin_size) - _null_log_likelihood(y, train_counts, bin_size)
    return _per_spike(gain, y)


def bits_per_spike(log_likelihoods, counts, train_counts, *, bin_size: float) -> float:
    """``(Σ_m log p̂(y_m) - log L_null) / (Σ y · ln 2)``: bits per spike of whole held-out trials.

    ``log_likelihoods``: ``(M,)``, each trial's ``log p(y_m)`` in nats (an importance-sampled estimate, e.g.
    ``elbo.evaluate.iwae_per_point``, with the ``log y!`` terms of the Poisson); ``counts``: those trials
    ``(M, T, N)``; ``train_counts``: the training trials ``(M', T, N)``, for the null model (each neuron's mean rate).
    """
    log_p = _tensor("log_likelihoods", log_likelihoods, dim=1)
    y = _tensor("counts", counts)
    if log_p.shape[0] != y.shape[0]:
        raise InputError(f"log_likelihoods has {log_p.shape[0]} values for {y.shape[0]} trials",
                         argument="log_likelihoods")
    _same_shape(counts=y, train_counts=_tensor("train_counts", train_counts))
    return _per_spike(float(log_p.sum()) - _null_log_likelihood(y, train_counts, bin_size), y)


def _variance_weighted_r2(truth: np.ndarray, estimate: np.ndarray, name: str) -> float:
    """``1 - Σ_k Σ_i (y_ik - ŷ_ik)² / Σ_k Σ_i (y_ik - ȳ_k)²`` over rows ``i`` and outputs ``k`` (scikit-learn's
    ``r2_score(multioutput="variance_weighted")``)."""
    total = ((truth - truth.mean(0)) ** 2).sum()
    if total == 0:
        raise InputError(f"{name} are constant: R² is undefined", argument=name)
    return float(1 - ((truth - estimate) ** 2).sum() / total)


def rate_r2(true_rates, rates) -> float:
    """R² of ``rates`` against ``true_rates`` (same shape ``(..., N)``, same units), every trial and bin a sample and
    every neuron an output, variance-weighted: ``1 - Σ (r - r̂)² / Σ_n Σ (r_n - r̄_n)²``, each neuron centred on its
    own mean (as scikit-learn's ``r2_score(..., multioutput="variance_weighted")``). 1 is perfect; a constant rate
    per neuron scores 0."""
    truth, estimate = _tensor("true_rates", true_rates, dim=None), _tensor("rates", rates, dim=None)
    _same_shape(true_rates=truth, rates=estimate)
    return _variance_weighted_r2(truth.reshape(-1, truth.shape[-1]).numpy(),
                                 estimate.reshape(-1, estimate.shape[-1]).numpy(), "true_rates")


def latent_r2(true_latents, latents, *, seed: int = 0) -> float:
    """R² of the true latents from the inferred ones through the best affine map: ``true ≈ latents A + c`` fitted by
    least squares on a random half of the bins (each trial's bins pooled, the half drawn from ``seed``) and scored,
    variance-weighted over the true latent dimensions (as ``rate_r2``), on the other half.

    ``true_latents``: ``(M, T, d)``; ``latents``: ``(M, T, k)``, any ``k`` (a model's latents, a baseline's
    log-rates). The map makes the score blind to the latents' basis, as a latent space is identified up to an
    affine map.
    """
    check_seed(seed)
    truth, estimate = _tensor("true_latents", true_latents), _tensor("latents", latents)
    if truth.shape[:2] != estimate.shape[:2]:
        raise InputError(f"latents has shape {tuple(estimate.shape)}, which does not match true_latents' trials and "
                         f"bins {tuple(truth.shape[:2])}", argument="latents")
    y = truth.reshape(-1, truth.shape[-1]).numpy()
    x = np.concatenate([estimate.reshape(-1, estimate.shape[-1]).numpy(), np.ones((len(y), 1))], axis=1)
    if len(y) < 2 * x.shape[1]:
        raise InputError(f"latent_r2 needs at least {2 * x.shape[1]} bins to fit and score a map from "
                         f"{x.shape[1] - 1} latents, got {len(y)}", argument="latents")
    order = np.random.default_rng(seed).permutation(len(y))
    fit, score = order[:len(y) // 2], order[len(y) // 2:]
    coefficients = np.linalg.lstsq(x[fit], y[fit], rcond=None)[0]
    return _variance_weighted_r2(y[score], x[score] @ coefficients, "true_latents")
