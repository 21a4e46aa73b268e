"""The baselines a model of spike counts is measured against: tensors in, tensors out.

* ``kernel_smoothing``: each neuron's counts smoothed along time by a Gaussian kernel, the rate estimate that needs
  no model at all.
* ``smoothing_predictions``: the Neural Latents Benchmark's smoothing baseline of co-smoothing (Pei et al. 2021,
  §5): the held-in neurons' smoothed log-rates as features, a Poisson GLM per held-out neuron fitted on the training
  trials (scikit-learn's ``PoissonRegressor``), its predictions on the evaluated trials.
* ``oracle``: what the truth allows. Each trial's MAP latents under the true readout ``r = exp(W z + b)`` and a GP
  smoothness prior with a fixed timescale, fitted by L-BFGS on the Poisson log posterior, and their rates. A model
  that learns its readout cannot be expected to do better than this.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..._checks import check_positive_float
from ...errors import InputError
from .distributions import squared_exponential

__all__ = ["kernel_smoothing", "smoothing_predictions", "oracle"]


def _counts(name: str, values) -> torch.Tensor:
    values = torch.as_tensor(values).detach().cpu().to(torch.float64)
    if values.dim() != 3 or values.numel() == 0:
        raise InputError(f"{name} must be non-empty (trials, bins, neurons), got shape {tuple(values.shape)}",
                         argument=name)
    return values


def kernel_smoothing(counts, *, bin_size: float, width: float = 0.05) -> torch.Tensor:
    """Rates (spikes/s) from counts ``(M, T, N)``: ``r̂_t = Σ_s k(t - s) y_s / (Δ Σ_s k(t - s))``, with the Gaussian
    kernel ``k(u) = exp(-u² Δ² / (2 w²))`` of standard deviation ``w = width`` seconds, normalised by the kernel's
    mass inside the trial (so that the first and last bins are not biased down)."""
    check_positive_float(bin_size=bin_size, width=width)
    y = _counts("counts", counts)
    steps = torch.arange(y.shape[1], dtype=torch.float64)
    kernel = torch.exp(-((steps[:, None] - steps[None, :]) * bin_size).square() / (2 * width ** 2))  # (T, T)
    kernel = kernel / kernel.sum(1, keepdim=True)
    return torch.einsum("ts,msn->mtn", kernel, y) / bin_size


def _log_features(counts: torch.Tensor, bin_size: float, width: float) -> np.ndarray:
    """Smoothed log-rates, one row a bin: ``(M T, N)``, floored at 0.01 spikes/s."""
    rates = kernel_smoothing(counts, bin_size=bin_size, width=width)
    return rates.clamp_min(0.01).log().reshape(-1, rates.shape[-1]).numpy()


def smoothing_predictions(train_held_in, train_held_out, held_in, *, bin_size: float, width: float = 0.05,
                          alpha: float = 1e-2) -> torch.Tensor:
    """The held-out neurons' rates (spikes/s, ``(M, T, N_out)``) in the evaluated trials ``held_in: (M, T, N_in)``:
    a ``PoissonRegressor(alpha=alpha)`` per held-out neuron from the held-in neurons' smoothed log-rates
    (``kernel_smoothing`` with ``width``) to its counts, fitted on the training trials (``train_held_in``,
    ``train_held_out``)."""
    from sklearn.linear_model import PoissonRegressor  # scikit-learn's import is slow: only for this baseline

    check_positive_float(alpha=alpha)
    train_in, train_out, test_in = (_counts(name, values) for name, values in
                                    (("train_held_in", train_held_in), ("train_held_out", train_held_out),
                                     ("held_in", held_in)))
    features = _log_features(train_in, bin_size, width)
    targets = train_out.reshape(-1, train_out.shape[-1]).numpy()
    test_features = _log_features(test_in, bin_size, width)
    means = [PoissonRegressor(alpha=alpha, max_iter=1000).fit(features, targets[:, n]).predict(test_features)
             for n in range(targets.shape[1])]
    return torch.as_tensor(np.stack(means, axis=1)).reshape(*test_in.shape[:2], -1) / bin_size


def oracle(counts, weights, bias, *, bin_size: float, timescale: float = 0.1, prior_variance=1.0,
           jitter: float = 1e-3, max_iter: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """MAP latents ``(M, T, d)`` and their rates ``exp(z Wᵀ + b)`` (spikes/s, ``(M, T, N)``) of counts ``(M, T, N)``
    under the true readout ``weights: (N, d)``, ``bias: (N,)``:

        ẑ = argmax_z Σ_{t,n} log Poisson(y_tn | exp(w_n · z_t + b_n) Δ) + Σ_j log N(z_{:,j} | 0, s_j² K),

    ``K`` the squared-exponential kernel with the fixed ``timescale`` (seconds) and ``jitter``, ``s_j²``
    = ``prior_variance`` (a number or ``(d,)``). Solved in float64 by L-BFGS (strong Wolfe line search) in the
    whitened coordinates ``z_{:,j} = s_j L u_j`` (``K = L Lᵀ``), where the log prior is ``-½ ‖u‖²``; the objective is
    concave, so the optimum is the MAP.
    """
    check_positive_float(bin_size=bin_size, timescale=timescale, jitter=jitter)
    y = _counts("counts", counts)
    w, b = (torch.as_tensor(v, dtype=torch.float64) for v in (weights, bias))
    if w.dim() != 2 or w.shape[0] != y.shape[-1] or b.shape != (y.shape[-1],):
        raise InputError(f"weights must be (N, d) and bias (N,) with N = {y.shape[-1]} neurons, got "
                         f"{tuple(w.shape)} and {tuple(b.shape)}", argument="weights")
    num_dims, times = w.shape[1], torch.arange(y.shape[1], dtype=torch.float64) * bin_size
    scale = torch.as_tensor(prior_variance, dtype=torch.float64).expand(num_dims).sqrt()
    factor = torch.linalg.cholesky(squared_exponential(times, torch.full((num_dims,), float(timescale),
                                                                         dtype=torch.float64), jitter=jitter))
    u = torch.zeros(y.shape[0], num_dims, y.shape[1], dtype=torch.float64, requires_grad=True)  # (M, d, T)

    def latents() -> torch.Tensor:
        return (scale[:, None] * (factor @ u.unsqueeze(-1)).squeeze(-1)).transpose(-1, -2)  # (M, T, d)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        log_mean = latents() @ w.T + b + math.log(bin_size)
        loss = (log_mean.exp() - y * log_mean).sum() + 0.5 * u.square().sum()  # -log posterior + const
        loss.backward()
        return loss

    optimizer = torch.optim.LBFGS([u], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=50)
    optimizer.step(closure)
    with torch.no_grad():
        z = latents()
        return z, (z @ w.T + b).exp()
