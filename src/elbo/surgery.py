"""ELBO surgery: the ELBO over a data set taken apart (Hoffman & Johnson 2016; Chen et al. 2018), with the exact
aggregate posterior ``q(z) = 1/N Σ_n q(z|x_n)`` (``log_aggregate_density``, ``log_marginal_densities``).

``elbo_surgery`` needs a model with one stochastic layer whose prior and guide are diagonal Gaussians
(``elbo.protocols.one_gaussian_layer``); ``surgery_run`` does it for a run directory (settings:
``elbo.configs.SurgeryConfig``) and writes ``surgery.json``. Every term is in nats per data point.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch.distributions import Normal, kl_divergence

from ._checks import check_device, check_fits, check_positive
from ._files import write_json
from .configs import SurgeryConfig
from .data import batches, check_data, slices
from .errors import InputError
from .evaluate import mean_and_stderr
from .families import diagonal_gaussian
from .protocols import LatentModel, check_capability
from .runs import load_run, locked, measured_data

__all__ = ["diagonal_gaussian", "log_aggregate_density", "log_marginal_densities", "elbo_surgery", "surgery_run",
           "SURGERY_TERMS", "SURGERY_LABELS", "BLOCK_SIZE"]

SURGERY_LABELS = {  # the terms of elbo_surgery as tables and figures name them
    "reconstruction": "reconstruction E[log p(x|z)]",
    "index_code_mi": "index-code MI I[n; z]",
    "marginal_kl": "marginal KL(q(z) ‖ p(z))",
    "total_correlation": "  total correlation",
    "dimensionwise_kl": "  dimension-wise KL",
    "kl": "E_n KL(q(z|x_n) ‖ p(z))",
    "elbo": "ELBO",
}
SURGERY_TERMS = tuple(SURGERY_LABELS)
BLOCK_SIZE = SurgeryConfig.block_size  # draws and mixture components per block


def _quadratic_features(z: torch.Tensor) -> torch.Tensor:
    """``[z², z, 1]``: ``(..., Q, d)`` → ``(..., Q, 2d + 1)``, the features of ``_quadratic_coefficients``."""
    return torch.cat([z.pow(2), z, torch.ones_like(z[..., :1])], -1)


def _quadratic_coefficients(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(..., N, d)`` → ``(..., N, 2d + 1)`` such that ``_quadratic_features(z) @ coefficients.mT`` holds
    ``log N(z; loc_m, diag(scale_m²))`` for every z and m: expanding the square,
    ``log N(z; loc_m, scale_m) = Σ_j [-z_j²/(2 scale_mj²) + z_j loc_mj/scale_mj²] + c_m``."""
    precision = scale.pow(-2)
    log_normalizer = (-0.5 * (loc.pow(2) * precision).sum(-1) - scale.log().sum(-1)
                      - loc.shape[-1] / 2 * math.log(2 * math.pi))
    return torch.cat([-0.5 * precision, loc * precision, log_normalizer[..., None]], -1)


def _log_sum_exp_last(block: torch.Tensor) -> torch.Tensor:
    """``logsumexp(block, -1)``, in place: the block is scratch (one temporary fewer than ``torch.logsumexp``).

    Terms more than 700 nats below the largest are raised to ``e^-700 < 10^-304``: fewer than ``10^280`` of them
    cannot move the total (at least 1) by a unit in the last place of a float64, and ``exp`` of lower values, whose
    results are subnormal or zero, runs about five times slower on a CPU; most of a mixture's terms lie there."""
    log_max = block.amax(-1, keepdim=True)
    return block.sub_(log_max).clamp_(min=-700.0).exp_().sum(-1).log_() + log_max[..., 0]


def _log_mixture_density(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, *, rows: int, columns: int,
                         progress: bool, what: str) -> torch.Tensor:
    """``log (1/N) Σ_m N(z_q; loc_m, diag(scale_m²))`` for every q: ``z: (..., Q, d)``, ``loc, scale: (..., N, d)``
    → ``(..., Q)``, in float64, in blocks of ``rows`` draws by ``columns`` components (one matrix product each,
    ``_quadratic_coefficients``) combined with ``logaddexp``: memory ``O(rows · columns)`` whatever Q and N.
    Float64, because the expanded terms (of size ``(z / scale)²``) cancel, and float32 keeps too few digits."""
    features, coefficients = _quadratic_features(z.double()), _quadratic_coefficients(loc.double(), scale.double())
    num_draws, num_components = features.shape[-2], coefficients.shape[-2]
    log_sum = torch.full(features.shape[:-1], -math.inf, dtype=torch.float64, device=z.device)
    for draws in slices(num_draws, rows, progress=progress, what=what):
        for components in slices(num_components, columns):
            block = features[..., draws, :] @ coefficients[..., components, :].mT  # (..., rows, columns)
            log_sum[..., draws] = torch.logaddexp(log_sum[..., draws], _log_sum_exp_last(block))
    return log_sum - math.log(num_components)


@torch.no_grad()  # an evaluation: keeping the graph of every block would cost O(Q·N) memory
def log_aggregate_density(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, *, block_size: int = BLOCK_SIZE,
                          progress: bool = False) -> torch.Tensor:
    """``log q(z) = log (1/N) Σ_m N(z; loc_m, diag(scale_m²))``, the mixture of N diagonal Gaussians, exactly.

    ``z: (Q, D)``, ``loc, scale: (N, D)``; returns ``(Q,)`` in float64, from blocks of ``block_size`` draws by
    ``block_size`` components (``Q·N`` exponentials in all).
    """
    check_positive(block_size=block_size)
    return _log_mixture_density(z, loc, scale, rows=block_size, columns=block_size, progress=progress,
                                what="log q(z)")


@torch.no_grad()  # an evaluation: keeping the graph of every block would cost O(Q·N·D) memory
def log_marginal_densities(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, *,
                           block_size: int = BLOCK_SIZE, progress: bool = False) -> torch.Tensor:
    """``log q(z_j) = log (1/N) Σ_m N(z_j; loc_mj, scale_mj²)`` for every dimension j: the marginals of the
    mixture, each a mixture of N one-dimensional Gaussians, exactly.

    ``z: (Q, D)``, ``loc, scale: (N, D)``; returns ``(Q, D)`` in float64, from blocks of ``block_size // D`` draws
    by ``block_size`` components by D dimensions (memory ``O(block_size²)``). This is the expensive part of ELBO
    surgery: ``Q·N·D`` exponentials.
    """
    check_positive(block_size=block_size)
    # the D dimensions are a batch of one-dimensional mixtures: (D, Q, 1) draws, (D, N, 1) components
    log_q = _log_mixture_density(z.T[..., None], loc.T[..., None], scale.T[..., None],
                                 rows=max(1, block_size // z.shape[1]), columns=block_size, progress=progress,
                                 what="log q(z_j)")
    return log_q.T


def _encode(guide, data: torch.Tensor, batch_size: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``loc, scale: (N, D)`` of the diagonal Gaussian ``q(z|x_n)`` of every point."""
    parts = [diagonal_gaussian(guide(x)) for x in batches(data, batch_size, progress, "encode")]
    return torch.cat([loc for loc, _ in parts]), torch.cat([scale for _, scale in parts])


def _given_the_data(num_samples: int, all_points: bool) -> bool:
    return all_points and num_samples >= 2


def _monte_carlo_summary(values: torch.Tensor, *, all_points: bool) -> dict:
    """``mean`` and ``stderr`` of a Monte Carlo average, ``values: (S, P)``: S draws of z for each of P points.

    With every point of the data set (``all_points``) and S ≥ 2, ``stderr`` is the Monte Carlo error given the data
    set, ``sqrt(Σ_n Var_s[values_sn] / S) / P`` (zero for a closed-form term). Otherwise (S = 1, or P points drawn
    at random from the data set) it is the standard error over the P per-point averages, which also counts how the
    points differ from one another: an upper bound on the Monte Carlo error given the data set."""
    values = values.double()
    if _given_the_data(len(values), all_points):
        return {"mean": float(values.mean()), "stderr": float((values.var(0) / len(values)).sum().sqrt()
                                                             / values.shape[1])}
    mean, stderr = mean_and_stderr(values.mean(0))
    return {"mean": mean, "stderr": stderr}


@torch.no_grad()
def elbo_surgery(model, guide, data: torch.Tensor, *, num_samples: int = 1,
                 dimension_samples: int = SurgeryConfig.dimension_samples, batch_size: int = 100,
                 block_size: int = BLOCK_SIZE, progress: bool = False) -> dict:
    """The ELBO over a data set of N points, taken apart (Hoffman & Johnson 2016; Chen et al. 2018):

        ELBO = E_n E_q(z|x_n)[log p(x_n|z)]  -  I[n; z]  -  KL(q(z) ‖ p(z)),
        KL(q(z) ‖ p(z)) = KL(q(z) ‖ Π_j q(z_j))  +  Σ_j KL(q(z_j) ‖ p(z_j))   (total correlation + dimension-wise KL),

    with the aggregate posterior ``q(z) = 1/N Σ_m q(z|x_m)`` and the index-code mutual information
    ``I[n; z] = E_n E_q(z|x_n)[log q(z|x_n) - log q(z)]``, ``0 ≤ I ≤ log N``; also ``E_n KL(q(z|x_n) ‖ p(z)) = I +
    KL(q(z) ‖ p(z))`` (``kl``, in closed form). The guide must give diagonal Gaussians and the prior must be one.

    Every expectation is a Monte Carlo average over ``num_samples`` draws ``z ~ q(z|x_n)`` for each point, and the
    densities in it are exact: ``log q(z)`` and ``log q(z_j)`` sum over all N components
    (``log_aggregate_density``, ``log_marginal_densities``). Each marginal costs ``N · D`` exponentials per draw, so
    the total correlation and the dimension-wise KL use the draws of ``dimension_samples / num_samples`` points
    chosen at random (of all of them when that is N or more). Returns, in nats per data point, each term of
    ``SURGERY_TERMS`` as ``{"mean", "stderr"}``, ``dimensionwise_kl_per_unit`` (``KL(q(z_j) ‖ p(z_j))`` for each
    j), the sizes, and ``standard_errors``, which says what the standard errors are: with ``num_samples`` ≥ 2 the
    Monte Carlo error given the data set; with one draw per point, or for the terms of randomly chosen points, the
    standard error over points, an upper bound on it (``_monte_carlo_summary``). ``data: (N, ...)``, N ≥ 2.

    Densities are computed in float64; the likelihood gets ``z`` in the dtype of ``data``. Cost: ``S·N`` and
    ``dimension_samples · N · D`` exponentials (S = ``num_samples``), in blocks of ``block_size²``.
    """
    check_positive(num_samples=num_samples, dimension_samples=dimension_samples, batch_size=batch_size,
                   block_size=block_size)
    check_capability(model, LatentModel, "ELBO surgery")
    check_data(model, data)
    if len(data) < 2:
        raise InputError(f"ELBO surgery needs at least 2 data points, got {len(data)}")
    started = time.perf_counter()
    prior = Normal(*(v.double() for v in diagonal_gaussian(model.prior(), what="the prior p(z)")))
    loc, scale = (v.double() for v in _encode(guide, data, batch_size, progress))  # (N, D)
    num_points, latent_dim = loc.shape
    check_fits(4 * num_samples * loc.numel() * loc.element_size(), loc.device,  # z and three more of its size
               what=f"{num_samples} draws of z for each of {num_points} points", argument="num_samples",
               remedy="lower num_samples or max_points")
    z = loc + scale * torch.randn(num_samples, num_points, latent_dim, dtype=loc.dtype, device=loc.device)  # (S, N, D)
    log_q_own = Normal(loc, scale).log_prob(z).sum(-1)  # (S, N): log q(z | x_n) at z drawn from it
    log_q = log_aggregate_density(z.reshape(-1, latent_dim), loc, scale, block_size=block_size,
                                  progress=progress).reshape(z.shape[:2])
    log_p = prior.log_prob(z).sum(-1)
    log_likelihood = torch.cat([model.likelihood(z[:, points].to(data.dtype)).log_prob(data[points])
                                for points in slices(num_points, batch_size)], 1).double()  # (S, N)
    kl = kl_divergence(Normal(loc, scale), prior).sum(-1).expand(num_samples, -1)  # closed form, (S, N)
    terms = {"reconstruction": log_likelihood, "index_code_mi": log_q_own - log_q, "marginal_kl": log_q - log_p,
             "kl": kl, "elbo": log_likelihood - kl}

    num_chosen = min(num_points, max(2, dimension_samples // num_samples))
    log_ratio_marginals = _marginal_terms(terms, z, log_q, loc, scale, prior, num_chosen, block_size, progress)
    result = _summary(terms, num_points=num_points, num_samples=num_samples, num_chosen=num_chosen,
                      latent_dim=latent_dim)
    result["dimensionwise_kl_per_unit"] = log_ratio_marginals.mean((0, 1)).tolist()
    result["seconds"] = time.perf_counter() - started
    return result


def _marginal_terms(terms: dict, z, log_q, loc, scale, prior, num_chosen: int, block_size: int,
                    progress: bool) -> torch.Tensor:
    """Add the total correlation and the dimension-wise KL to ``terms``, from the draws of ``num_chosen`` points
    chosen at random; returns ``log q(z_j) - log p(z_j)`` of those draws, ``(S, P, D)``."""
    num_samples, num_points, latent_dim = z.shape
    chosen = torch.randperm(num_points, device=z.device)[:num_chosen]
    z_chosen = z[:, chosen].reshape(-1, latent_dim)
    log_q_marginals = log_marginal_densities(z_chosen, loc, scale, block_size=block_size, progress=progress)  # (S·P, D)
    log_ratio_marginals = (log_q_marginals - prior.log_prob(z_chosen)).reshape(num_samples, num_chosen, -1)
    terms["total_correlation"] = log_q[:, chosen] - log_q_marginals.sum(1).reshape(num_samples, num_chosen)
    terms["dimensionwise_kl"] = log_ratio_marginals.sum(-1)
    return log_ratio_marginals


def _summary(terms: dict, *, num_points: int, num_samples: int, num_chosen: int, latent_dim: int) -> dict:
    """The sizes, what the standard errors are, and every term's ``_monte_carlo_summary``."""
    result = {"num_points": num_points, "num_samples": num_samples, "dimension_samples": num_chosen * num_samples,
              "latent_dim": latent_dim, "log_num_points": math.log(num_points),
              "standard_errors": (
                  ("Monte Carlo error given the data set" if _given_the_data(num_samples, True) else
                   "over the points (one draw each): an upper bound on the Monte Carlo error given the data set")
                  + ("" if num_chosen == num_points else
                     f"; total correlation and dimension-wise KL: over the {num_chosen} randomly chosen points"))}
    for name in SURGERY_TERMS:
        result[name] = _monte_carlo_summary(terms[name], all_points=terms[name].shape[1] == num_points)
    return result


def surgery_run(path, *, data: str | None = None, data_dir=None, device="cpu", progress: bool = False,
                **settings) -> dict:
    """``elbo_surgery`` of the model of run directory ``path`` over the first ``max_points`` points of ``split``
    (of its own data set, or of ``data``: another of the same kind), written to ``path/surgery.json``.
    ``settings``: the fields of ``elbo.configs.SurgeryConfig``.

    The default is the training set, the data the aggregate posterior was fitted to (as the data set scores it:
    dynamically binarized images binarized once with a fixed seed)."""
    config = SurgeryConfig(**settings)
    check_device(device)
    with locked(path):
        return _surgery_run(path, config, data=data, data_dir=data_dir, device=device, progress=progress)


def _surgery_run(path, config: SurgeryConfig, *, data, data_dir, device, progress: bool) -> dict:
    run = load_run(path, data_dir=data_dir, device=device)
    dataset = measured_data(run, data, data_dir)
    x, _ = dataset.scored(config.split)
    torch.manual_seed(config.seed)
    result = {"run": str(run.path), "epoch": run.epoch, "data": dataset.name, "split": config.split,
              "seed": config.seed,
              **elbo_surgery(run.model, run.model.guide, x[:config.max_points].to(device),
                             num_samples=config.num_samples, dimension_samples=config.dimension_samples,
                             batch_size=config.batch_size, block_size=config.block_size, progress=progress)}
    write_json(Path(path) / "surgery.json", result)
    return result
