"""Diagnostics: how far q is from the posterior, and why a VAE's bound is what it is.

How far is q from the posterior? Pareto-smoothed importance sampling (PSIS) and its k̂ (``psis``, ``khat_meaning``).
With draws ``z_s ~ q`` and log-weights ``log w_s = log p(x, z_s) - log q(z_s)``, PSIS (Vehtari et al. 2024) fits a
generalized Pareto distribution to the largest weights and replaces them by its quantiles. The fitted shape k̂
estimates how heavy the tail of the weights is: the weights have finite moments of order below 1/k. Yao et al.
(2018) read it as a diagnostic of the variational approximation:

- k̂ < 0.5: q is close to the posterior; importance-sampling estimates converge fast;
- 0.5 ≤ k̂ < 0.7: q is not perfect but still useful: the PSIS-reweighted estimates converge, more slowly, and
  they (not q's raw draws) are the ones to report;
- k̂ ≥ 0.7: q misses mass the posterior has; its draws and every importance-sampling estimate from them
  (PSIS means, the log-evidence estimate) are unreliable.

Why is a VAE's bound what it is? Per-unit KL, posterior collapse, and gradient signal-to-noise:

- ``kl_per_dimension``: ``E_n KL(q(z_j|x_n) ‖ p(z_j))`` for each latent unit j, in closed form; the units' values
  add up to the ELBO's KL term. A unit whose KL is near 0 carries no information about x.
- ``posterior_collapse``: a one-line warning when most of the latent space is unused (thresholds below).
- ``gradient_snr``: the signal-to-noise ratio ``|E[g]| / std[g]`` of each parameter's stochastic gradient of the
  IWAE bound ``L_K`` (Rainforth et al. 2018), averaged over the encoder's and over the decoder's parameters. With
  the reparameterization gradient the decoder's SNR grows like ``√K`` while the encoder's shrinks like ``1/√K``;
  DReG (Tucker et al. 2018) restores the encoder's.
- ``diagnose_run``: all of these for a run directory, written to ``diagnostics.json``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence
from tqdm.auto import tqdm

from . import bounds
from ._checks import check_positive
from ._files import write_json
from ._optional import require
from .estimators import check_estimator
from .evaluate import ACTIVITY_THRESHOLD, _batches, _check_data, _measured_images, diagonal_gaussian, latent_activity

__all__ = ["KHAT_THRESHOLD", "psis", "khat_meaning", "KL_THRESHOLD", "kl_per_dimension", "posterior_collapse",
           "vae_parameter_groups", "gradient_snr", "diagnose_run", "SNR_ESTIMATORS"]

KHAT_THRESHOLD = 0.7
KL_THRESHOLD = 0.01  # nats: a unit below it in every direction of x is, in effect, its prior
SNR_ESTIMATORS = ("reparam", "stl", "dreg")


# --- PSIS k̂: how far q is from the posterior ----------------------------------------------------------------------

def psis(log_w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Pareto-smoothed, self-normalized log-weights (shape of ``log_w``, ``(M,)``) and k̂, by arviz-stats' ``psislw``
    (Vehtari et al. 2024; the draws are independent, from q, so the relative efficiency is 1).

    k̂ is Zhang and Stephens' generalized-Pareto fit (arviz-stats) checked against Hill's estimator of the same
    tail index (the mean log-excess of the largest weights over the threshold; Hill 1975), the maximum-likelihood
    estimate for a Pareto tail. The two agree to about 0.1 on heavy tails (t and generalized-Pareto weights with k
    from 0.5 to 1, and q too narrow for its target). Where they fall on either side of 0.7, the diagnostic takes
    the side that warns, unless the fit is the one that failed:

    - the largest weights all equal to 1e-9 (q proportional to the posterior, or a constant log density):
      importance sampling is exact; the weights are left as they are and k̂ is ``-inf``;
    - Hill ≥ 0.7 while the fit is below it: k̂ is Hill's. A mean-field q of a correlated regression posterior
      (sds 8% of the posterior's) gave fit 0.61 and Hill 0.85 for seed 0, and 1.01 / 0.90 for seed 1;
    - a spike at the threshold: when q is nearly exact the log-weights are almost constant and pile up at a local
      maximum of ``log w(z)``, with a few draws of q's far tails above it. The fit then returns anything from 0.4
      to 7 for weights that span a factor of two (issue 11's beta-binomial: 3.4 to 7 over seeds at the KL-optimal
      q, 0.38 to 6.5 for mean-field fits in float32), while Hill's estimate stays at 0.04 to 0.09. Where Hill's
      is below 0.5 and the fit exceeds it by more than 0.3 (more than the 0.18 seen on any genuine tail), k̂ is
      Hill's.
    """
    if log_w.dim() != 1 or log_w.shape[0] < 2:
        raise ValueError(f"log_w must have shape (M,) with M >= 2 draws, got {tuple(log_w.shape)}")
    if not bool(torch.isfinite(log_w).all()):
        raise ValueError(f"log_w must be finite; {int((~torch.isfinite(log_w)).sum())} of {len(log_w)} are not")
    require("arviz_stats", extra="mcmc", feature="PSIS k̂")
    from arviz_stats.base import array_stats

    values = log_w.detach().cpu().double().numpy()
    tail_size = int(min(0.2 * len(values), math.ceil(3 * math.sqrt(len(values)))))
    if tail_size < 5:  # arviz-stats needs 5 tail draws: 9 draws or more
        return log_w - torch.logsumexp(log_w, 0), math.nan
    tail = np.sort(values)[-tail_size - 1:]
    if tail[-1] - tail[0] <= 1e-9:  # equal to round-off: q is the posterior (BaM on a Gaussian: 4e-13)
        return log_w - torch.logsumexp(log_w, 0), -math.inf
    # arviz-stats' psislw takes a log-likelihood (leave-one-out's log-weights are its negative), so -log w
    with np.errstate(divide="ignore", invalid="ignore"):  # its fit on a nearly flat tail; checked below
        log_w_smoothed, khat = array_stats.psislw(-values, r_eff=1.0)
    khat = float(khat)
    hill = float(np.mean(tail[1:] - tail[0]))
    if not math.isfinite(khat):
        khat = hill
    if hill < 0.5 and khat - hill > 0.3:  # a spike at the threshold: the fit failed
        khat = hill
    elif khat < KHAT_THRESHOLD <= hill:
        khat = hill
    return torch.as_tensor(log_w_smoothed, dtype=log_w.dtype, device=log_w.device), khat


def khat_meaning(khat: float) -> str:
    """One line saying what a value of k̂ means for q (thresholds of Yao et al. 2018)."""
    if math.isnan(khat):
        return "k̂ is undefined: too few draws of q (at least 9) for a Pareto tail"
    if khat < 0.5:
        return "k̂ < 0.5: q is close to the posterior; its PSIS-reweighted estimates are reliable"
    if khat < KHAT_THRESHOLD:
        return ("0.5 ≤ k̂ < 0.7: q is not perfect but useful: report the PSIS-reweighted estimates, which converge "
                "slowly")
    return ("k̂ ≥ 0.7: q misses posterior mass; its draws and importance-sampling estimates "
            "(PSIS means, log evidence) are unreliable")


# --- VAEs: per-unit KL, posterior collapse, gradient signal-to-noise ---------------------------------------------

@torch.no_grad()
def kl_per_dimension(model, guide, data: torch.Tensor, *, batch_size: int = 100) -> torch.Tensor:
    """``E_n KL(q(z_j|x_n) ‖ p(z_j))`` for each unit j, shape ``(D,)``, in nats: the closed form for a diagonal
    Gaussian ``q`` and a factorized Gaussian prior, averaged over the points of ``data: (N, ...)``."""
    check_positive(batch_size=batch_size)
    if not hasattr(model, "prior"):
        raise ValueError(f"KL per dimension needs a model with prior() (one stochastic layer); "
                         f"{type(model).__name__} gives only the log joint")
    _check_data(model, data)
    prior = Normal(*diagonal_gaussian(model.prior(), what="the prior p(z)"))
    kl_sum = sum(kl_divergence(Normal(*diagonal_gaussian(guide(x))), prior).sum(0)
                 for x in _batches(data, batch_size, False, "KL"))
    return kl_sum / len(data)


def posterior_collapse(kl: torch.Tensor | None, activity: torch.Tensor, *, kl_threshold: float = KL_THRESHOLD,
                       activity_threshold: float = ACTIVITY_THRESHOLD) -> str | None:
    """A warning, or ``None``, from the units' KL (``kl_per_dimension``; ``None`` for a model without a prior)
    and activity ``A_u = Cov_x(E_q[u])`` (``elbo.evaluate.latent_activity``).

    The posterior has collapsed when **every** unit's KL is below ``kl_threshold`` (0.01 nats: ``q(z|x) ≈ p(z)``
    for every x, so the decoder ignores z), or when **more than half** of the units are inactive
    (``A_u ≤ activity_threshold``, 0.01 as in Burda et al. 2015: the unit's posterior mean hardly moves with x).
    """
    inactive = int((activity <= activity_threshold).sum())
    if kl is not None and bool((kl < kl_threshold).all()):
        return (f"posterior collapse: every one of the {len(kl)} latent units has KL(q(z_j|x) ‖ p(z_j)) below "
                f"{kl_threshold} nats (largest {float(kl.max()):.3g}): q(z|x) is the prior and the decoder ignores z")
    if inactive > len(activity) / 2:
        return (f"posterior collapse: {inactive} of {len(activity)} latent units are inactive "
                f"(Cov_x E_q[z_j] ≤ {activity_threshold}): most of the latent space carries no information about x")
    return None


def vae_parameter_groups(model) -> dict[str, list[torch.nn.Parameter]]:
    """``{"encoder": [...], "decoder": [...]}`` for an ``elbo.vae`` model: the encoder is the parameters of
    ``q(z|x)`` (modules ``encoder`` / ``encoders``), the decoder is everything else (``p(x|z)``, ``p(z_l|z_{l+1})``,
    a learned likelihood scale)."""
    groups = {"encoder": [], "decoder": []}
    for name, parameter in model.named_parameters():
        groups["encoder" if name.startswith(("encoder.", "encoders.")) else "decoder"].append(parameter)
    if not groups["encoder"] or not groups["decoder"]:
        raise ValueError(f"{type(model).__name__} has no encoder or no decoder parameters: pass the groups yourself")
    return groups


def gradient_snr(model, guide, x: torch.Tensor, *, num_samples: int, estimator: str = "reparam",
                 num_draws: int = 100, parameters: dict) -> dict[str, float]:
    """The gradient signal-to-noise ratio of Rainforth et al. (2018) for each group of ``parameters``.

    For ``num_draws`` independent draws of the estimator's gradient ``g`` of ``mean_b L_K(x_b)`` (the IWAE bound
    with ``K = num_samples`` on the fixed batch ``x: (B, ...)``; K = 1 is the ELBO), each parameter's
    ``SNR = |mean(g)| / std(g)`` (sample mean and standard deviation over the draws, with Welford's update),
    averaged over the parameters of each group, e.g. ``parameters = vae_parameter_groups(model)``. A parameter
    whose gradient does not vary between draws (``std = 0``) has no noise to measure and is left out.

    Returns ``{group: mean SNR}``; ``estimator``: ``"reparam"``, ``"stl"`` or ``"dreg"``.
    """
    check_estimator(estimator, SNR_ESTIMATORS, bound="gradient_snr")
    check_positive(num_samples=num_samples)
    if not isinstance(num_draws, int) or isinstance(num_draws, bool) or num_draws < 2:
        raise ValueError(f"num_draws must be an integer >= 2 (a standard deviation needs two), got {num_draws!r}")
    groups = {name: [p for p in group if p.requires_grad] for name, group in parameters.items()}
    flat = [p for group in groups.values() for p in group]
    with torch.no_grad():
        bounds.iwae(model, guide, x, 1)  # validates x and the guide once, so that the draws below can skip it
    mean = m2 = None
    for draw in range(1, num_draws + 1):
        bound = bounds.iwae(model, guide, x, num_samples, estimator=estimator, validate_args=False).mean()
        gradients = torch.autograd.grad(bound, flat, allow_unused=True)
        g = torch.cat([(torch.zeros_like(p) if d is None else d).flatten().double() for p, d in zip(flat, gradients)])
        if mean is None:
            mean, m2 = torch.zeros_like(g), torch.zeros_like(g)
        delta = g - mean
        mean += delta / draw
        m2 += delta * (g - mean)
    std = (m2 / (num_draws - 1)).sqrt()
    sizes = [sum(p.numel() for p in group) for group in groups.values()]
    snr = {}
    for name, group_mean, group_std in zip(groups, mean.split(sizes), std.split(sizes)):
        noisy = group_std > 0
        snr[name] = float((group_mean[noisy].abs() / group_std[noisy]).mean()) if noisy.any() else math.nan
    return snr


def diagnose_run(path, *, num_samples=(1, 5, 50), estimators=("reparam", "dreg"), num_draws: int = 100,
                 batch_size: int = 100, data: str | None = None, data_dir=None, device="cpu", seed: int = 0,
                 progress: bool = False) -> dict:
    """Diagnostics of the model of run directory ``path``, written to ``path/diagnostics.json``:

    - on the test set: activity and active units, and (one stochastic layer) KL per unit; a collapse warning;
    - gradient SNR of encoder and decoder (``gradient_snr``) for every estimator and K in ``num_samples``, on the
      first ``batch_size`` training images (binarized once with a fixed seed where the data is dynamically binarized).

    ``data``: another data set with images of the same size to measure on.
    """
    from . import data as datasets
    from .train import load_run  # train imports evaluate, which this module imports

    for k in num_samples:
        check_positive(num_samples=k)
    for estimator in estimators:
        check_estimator(estimator, SNR_ESTIMATORS, bound="gradient_snr")
    started = time.perf_counter()
    run = load_run(path, data_dir=data_dir, device=device)
    images = _measured_images(run, data, data_dir)
    test, _ = datasets.scored_split(images, "test")
    batch, _ = datasets.scored_split(images, "train")
    model, test, batch = run.model, test.to(device), batch[:batch_size].to(device)
    torch.manual_seed(seed)
    activity = latent_activity(model, model.guide, test)  # checks the test images once, before any other work
    kl = kl_per_dimension(model, model.guide, test) if hasattr(model, "prior") else None
    groups = vae_parameter_groups(model)
    settings = [(estimator, k) for estimator in estimators for k in num_samples]
    snr = [{"estimator": estimator, "k": k, **gradient_snr(model, model.guide, batch, num_samples=k,
                                                           estimator=estimator, num_draws=num_draws,
                                                           parameters=groups)}
           for estimator, k in tqdm(settings, desc="gradient SNR", disable=not progress, leave=False)]
    result = {"run": str(run.path), "epoch": run.epoch, "data": images.name, "seed": seed,
              "num_test_images": len(test), "latent_dim": len(activity), "activity": activity.tolist(),
              "active_units": int((activity > ACTIVITY_THRESHOLD).sum()),
              "kl_per_dimension": None if kl is None else kl.tolist(),
              "collapse_warning": posterior_collapse(kl, activity),
              "snr_batch_size": len(batch), "num_draws": num_draws, "gradient_snr": snr,
              "seconds": time.perf_counter() - started}
    write_json(Path(path) / "diagnostics.json", result)
    return result
