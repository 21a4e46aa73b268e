"""Diagnostics of an amortized model: why its bound is what it is. Per-unit KL, posterior collapse, gradient
signal-to-noise.

- ``kl_per_dimension``: ``E_n KL(q(z_j|x_n) ‖ p(z_j))`` for each latent unit j, in closed form; the units' values
  add up to the ELBO's KL term. A unit whose KL is near 0 carries no information about x.
- ``posterior_collapse``: a one-line warning when most of the latent space is unused (thresholds below).
- ``gradient_snr``: the signal-to-noise ratio ``|E[g]| / std[g]`` of each parameter's stochastic gradient of the
  IWAE bound ``L_K`` (Rainforth et al. 2018), averaged over the encoder's and over the decoder's parameters. With
  the reparameterization gradient the decoder's SNR grows like ``√K`` while the encoder's shrinks like ``1/√K``;
  DReG (Tucker et al. 2018) restores the encoder's.
- ``diagnose_run``: all of these for a run directory (settings: ``elbo.configs.DiagnoseConfig``), written to
  ``diagnostics.json``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch.distributions import Normal, kl_divergence
from tqdm.auto import tqdm

from . import bounds
from ._checks import check_device, check_fits, check_positive, one_of
from ._files import write_json
from .configs import IWAE_ESTIMATORS, DiagnoseConfig
from .data import batches, check_data, graph_bytes_per_draw
from .errors import InputError
from .evaluate import ACTIVITY_THRESHOLD, latent_activity
from .families import diagonal_gaussian
from .protocols import HasEncoder, LatentModel, check_capability, one_gaussian_layer
from .runs import load_run, locked, measured_data

__all__ = ["KL_THRESHOLD", "kl_per_dimension", "posterior_collapse", "parameter_groups", "gradient_snr",
           "diagnose_run"]

KL_THRESHOLD = 0.01  # nats: a unit below it in every direction of x is, in effect, its prior


@torch.no_grad()
def kl_per_dimension(model, guide, data: torch.Tensor, *, batch_size: int = 100) -> torch.Tensor:
    """``E_n KL(q(z_j|x_n) ‖ p(z_j))`` for each unit j, shape ``(D,)``, in nats: the closed form for a diagonal
    Gaussian ``q`` and a factorized Gaussian prior, averaged over the points of ``data: (N, ...)``."""
    check_positive(batch_size=batch_size)
    check_capability(model, LatentModel, "the KL of each unit")
    check_data(model, data)
    prior = Normal(*diagonal_gaussian(model.prior(), what="the prior p(z)"))
    kl_sum = sum(kl_divergence(Normal(*diagonal_gaussian(guide(x))), prior).sum(0)
                 for x in batches(data, batch_size, False, "KL"))
    return kl_sum / len(data)


def posterior_collapse(kl: torch.Tensor | None, activity: torch.Tensor, *, kl_threshold: float = KL_THRESHOLD,
                       activity_threshold: float = ACTIVITY_THRESHOLD) -> str | None:
    """A warning, or ``None``, from the units' KL (``kl_per_dimension``; ``None`` for a model without one Gaussian
    layer)
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


def parameter_groups(model) -> dict[str, list[torch.nn.Parameter]]:
    """``{"encoder": [...], "decoder": [...]}``: the parameters of ``q(z|x)`` (the model's
    ``encoder_parameters()``) and everything else (``p(x|z)``, ``p(z_l|z_{l+1})``, a learned likelihood scale)."""
    check_capability(model, HasEncoder, "the gradient signal-to-noise ratio of encoder and decoder")
    encoder = {id(p) for p in model.encoder_parameters()}
    groups = {"encoder": [p for p in model.parameters() if id(p) in encoder],
              "decoder": [p for p in model.parameters() if id(p) not in encoder]}
    if not groups["encoder"] or not groups["decoder"]:
        raise InputError(f"{type(model).__name__} has no encoder or no decoder parameters: pass the groups yourself")
    return groups


def gradient_snr(model, guide, x: torch.Tensor, *, num_samples: int, estimator: str = "reparam",
                 num_draws: int = 100, parameters: dict) -> dict[str, float]:
    """The gradient signal-to-noise ratio of Rainforth et al. (2018) for each group of ``parameters``.

    For ``num_draws`` independent draws of the estimator's gradient ``g`` of ``mean_b L_K(x_b)`` (the IWAE bound
    with ``K = num_samples`` on the fixed batch ``x: (B, ...)``; K = 1 is the ELBO), each parameter's
    ``SNR = |mean(g)| / std(g)`` (sample mean and standard deviation over the draws, with Welford's update),
    averaged over the parameters of each group, e.g. ``parameters = parameter_groups(model)``. A parameter
    whose gradient does not vary between draws (``std = 0``) has no noise to measure and is left out.

    Returns ``{group: mean SNR}``; ``estimator``: ``"reparam"``, ``"stl"`` or ``"dreg"``.
    """
    one_of("estimator", estimator, IWAE_ESTIMATORS, context="for gradient_snr")
    check_positive(num_samples=num_samples)
    if not isinstance(num_draws, int) or isinstance(num_draws, bool) or num_draws < 2:
        raise InputError(f"num_draws must be an integer >= 2 (a standard deviation needs two), got {num_draws!r}",
                         argument="num_draws")
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


def diagnose_run(path, *, data: str | None = None, data_dir=None, device="cpu", progress: bool = False,
                 **settings) -> dict:
    """Diagnostics of the model of run directory ``path``, written to ``path/diagnostics.json``:

    - on the test set: activity and active units, and (one Gaussian stochastic layer) KL per unit; a collapse
      warning;
    - gradient SNR of encoder and decoder (``gradient_snr``) for every estimator and K in ``num_samples``, on the
      first ``batch_size`` training points (as the data set scores them: dynamically binarized images binarized
      once with a fixed seed).

    ``settings``: the fields of ``elbo.configs.DiagnoseConfig``; ``data``: another data set of the same kind.
    """
    config = DiagnoseConfig(**settings)
    check_device(device)
    with locked(path):
        return _diagnose_run(path, config, data=data, data_dir=data_dir, device=device, progress=progress)


def _diagnose_run(path, config: DiagnoseConfig, *, data, data_dir, device, progress: bool) -> dict:
    started = time.perf_counter()
    run = load_run(path, data_dir=data_dir, device=device)
    dataset = measured_data(run, data, data_dir)
    test, batch = dataset.scored("test")[0].to(device), dataset.scored("train")[0][:config.batch_size].to(device)
    model = run.model
    torch.manual_seed(config.seed)
    activity = latent_activity(model, model.guide, test)  # checks the test points once, before any other work
    kl = kl_per_dimension(model, model.guide, test) if one_gaussian_layer(model) else None
    groups = parameter_groups(model)
    check_fits(graph_bytes_per_draw(model, batch[:2]) * max(config.num_samples) * len(batch), device,
               what=f"the gradients of the IWAE bound with K = {max(config.num_samples)} on {len(batch)} points",
               argument="num_samples", remedy="lower num_samples or batch_size")
    cells = [(estimator, k) for estimator in config.estimators for k in config.num_samples]
    snr = [{"estimator": estimator, "k": k, **gradient_snr(model, model.guide, batch, num_samples=k,
                                                           estimator=estimator, num_draws=config.num_draws,
                                                           parameters=groups)}
           for estimator, k in tqdm(cells, desc="gradient SNR", disable=not progress, leave=False)]
    result = {"run": str(run.path), "epoch": run.epoch, "data": dataset.name, "seed": config.seed,
              "num_test_points": len(test), "latent_dim": len(activity), "activity": activity.tolist(),
              "active_units": int((activity > ACTIVITY_THRESHOLD).sum()),
              "kl_per_dimension": None if kl is None else kl.tolist(),
              "collapse_warning": posterior_collapse(kl, activity),
              "snr_batch_size": len(batch), "num_draws": config.num_draws, "gradient_snr": snr,
              "seconds": time.perf_counter() - started}
    write_json(Path(path) / "diagnostics.json", result)
    return result
