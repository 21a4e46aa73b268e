"""Measuring a trained model: test log-likelihood by importance sampling, bounds, active units.

- ``iwae_per_point``: ``L_K(x) = log (1/K) Σ_k p(x, z_k) / q(z_k|x)``, ``z_k ~ q(z|x)``, for every image, with the
  K samples drawn in chunks and combined by a running ``logsumexp`` so that memory does not grow with K.
- ``log_likelihood``: ``L_K`` with K = 5000, the standard estimate of ``log p(x)`` (Burda et al. 2015, §5):
  ``E[L_K] ≤ log p(x)`` and ``L_K → log p(x)`` as K grows; mean and standard error over the images.
- ``elbo_per_point``: the ELBO, with the closed-form KL where the model has a prior (one stochastic layer).
- ``latent_activity`` / ``active_units``: Burda et al.'s activity ``A_u = Cov_x(E_{q(u|x)}[u])``; a unit is active
  when ``A_u > 0.01``.
- ``evaluate`` gathers all of these on a test set; ``evaluate_run`` does it for a run directory and writes
  ``evaluation.json``. In a group of processes (``evaluate_run(..., nproc=N)``, or torchrun), each process takes a
  contiguous block of the test images, with a random stream of its own, and the per-image values are gathered.
- ``elbo_surgery``: the ELBO taken apart over a data set (Hoffman & Johnson 2016; Chen et al. 2018), with the
  exact aggregate posterior ``q(z) = 1/N Σ_n q(z|x_n)`` (``log_aggregate_density``, ``log_marginal_densities``);
  ``surgery_run`` does it for a run directory and writes ``surgery.json``.

Every function runs under ``torch.no_grad()`` and returns nats (per image), not negated.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.distributions import Distribution, Independent, Normal, kl_divergence
from tqdm.auto import tqdm

from . import bounds, distributed
from ._checks import check_positive
from ._compiler import compiled
from ._files import write_json

__all__ = ["iwae_per_point", "elbo_per_point", "log_likelihood", "mean_and_stderr", "latent_activity",
           "active_units", "evaluate", "evaluate_run", "ACTIVITY_THRESHOLD", "diagonal_gaussian",
           "log_aggregate_density", "log_marginal_densities", "elbo_surgery", "surgery_run", "SURGERY_TERMS",
           "SURGERY_LABELS", "DIMENSION_SAMPLES", "CHUNK_SIZE"]

ACTIVITY_THRESHOLD = 0.01


def _check_data(model, data: torch.Tensor) -> None:
    """Check the whole data set once, so that the batches can skip validation (a host sync each)."""
    if hasattr(model, "check_data"):
        model.check_data(data)
    elif data.is_floating_point() and not torch.isfinite(data).all():
        raise ValueError(f"the data must be finite: {int((~torch.isfinite(data)).sum())} values are NaN or inf")


def check_one_layer(model, what: str) -> None:
    """``what`` needs ``prior()`` and ``likelihood(z)``: a model with one stochastic layer, not a log joint alone."""
    if not (hasattr(model, "prior") and hasattr(model, "likelihood")):
        raise ValueError(f"{what} needs a model with prior() and likelihood(z) (one stochastic layer); "
                         f"{type(model).__name__} gives only the log joint")


def _chunks(size: int, chunk_size: int, *, progress: bool = False, what: str = ""):
    """The slices of ``range(size)`` in steps of ``chunk_size``, with a progress bar named ``what`` if asked."""
    starts = tqdm(range(0, size, chunk_size), desc=what, disable=not progress, leave=False)
    return (slice(start, start + chunk_size) for start in starts)


def _batches(data: torch.Tensor, batch_size: int, progress: bool, what: str):
    return (data[rows] for rows in _chunks(len(data), batch_size, progress=progress, what=what))


@torch.no_grad()
def iwae_per_point(model, guide, data: torch.Tensor, num_samples: int, *, batch_size: int = 100,
                   chunk_size: int = 20, compile: bool = False, progress: bool = False) -> torch.Tensor:
    """``L_K`` for each image of ``data: (N, ...)``, shape ``(N,)``.

    The guide runs once per batch; its ``q(z|x)`` gives the K samples ``chunk_size`` at a time, and
    ``log Σ_k w_k`` is accumulated with ``logaddexp``: memory is ``O(chunk_size · batch_size)``, not ``O(K)``.
    The defaults give the decoder chunks of 2000 rows: on this project's 2-core CPU, chunks five times larger ran
    at two thirds of the speed (every intermediate ``(rows, pixels)`` tensor is then tens of megabytes of fresh
    memory, out of cache), and chunks a quarter the size 10% slower.
    ``compile``: the log joint ``log p(x, z)`` of a chunk (the decoder: nearly all the work) goes through
    ``torch.compile``, which fuses its element-wise work (activations, the likelihood and its sum over pixels)
    into a few passes over memory; the samples are drawn as before.
    """
    check_positive(num_samples=num_samples, batch_size=batch_size, chunk_size=chunk_size)
    _check_data(model, data)
    log_joint = functools.partial(bounds.log_joint, model)
    # bounds.log_weights sees the model through its log joint alone, compiled or not
    joint = SimpleNamespace(log_prob=compiled(log_joint, data.device) if compile else log_joint)
    values = []
    for x in _batches(data, batch_size, progress, f"IWAE-{num_samples}"):
        q = guide(x)
        log_sum_w = torch.full((len(x),), -math.inf, dtype=x.dtype, device=x.device)
        for start in range(0, num_samples, chunk_size):
            log_w, _ = bounds.log_weights(joint, lambda _, q=q: q, x, min(chunk_size, num_samples - start),
                                          validate_args=False)  # the guide's q(z|x) for this batch, computed once
            log_sum_w = torch.logaddexp(log_sum_w, torch.logsumexp(log_w, 0))
        values.append(log_sum_w - math.log(num_samples))
    return torch.cat(values)


@torch.no_grad()
def elbo_per_point(model, guide, data: torch.Tensor, *, num_samples: int = 1, batch_size: int = 100,
                   progress: bool = False) -> torch.Tensor:
    """The ELBO of each image, shape ``(N,)``: form ``"analytic"`` (closed-form KL) for a model with ``prior()``,
    ``"mc"`` otherwise, with ``num_samples`` samples of ``z`` each."""
    check_positive(num_samples=num_samples, batch_size=batch_size)
    _check_data(model, data)
    form = "analytic" if hasattr(model, "prior") else "mc"
    return torch.cat([bounds.elbo(model, guide, x, num_samples, form=form, validate_args=False)
                      for x in _batches(data, batch_size, progress, "ELBO")])


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error ``std / sqrt(N)`` over the images."""
    values = values.detach().double()
    stderr = values.std() / math.sqrt(len(values)) if len(values) > 1 else torch.tensor(math.nan)
    return float(values.mean()), float(stderr)


def log_likelihood(model, guide, data: torch.Tensor, num_samples: int = 5000, *, batch_size: int = 100,
                   chunk_size: int = 20, compile: bool = False, progress: bool = False) -> tuple[float, float]:
    """Test log-likelihood ``(1/N) Σ_n L_K(x_n)`` in nats and its standard error over the images, K = 5000."""
    return mean_and_stderr(iwae_per_point(model, guide, data, num_samples, batch_size=batch_size,
                                          chunk_size=chunk_size, compile=compile, progress=progress))


def latent_activity(model, guide, data: torch.Tensor, *, batch_size: int = 100) -> torch.Tensor:
    """``A_u = Cov_x(E_{q(u|x)}[u])`` for each latent unit ``u``, shape ``(D,)`` (Burda et al. 2015, §5.2).

    ``E_q[u]`` is ``q.mean``, or ``q.mean_estimate()`` for a guide without a closed-form mean (the upper layers
    of ``elbo.vae.GaussianChain``)."""
    return _posterior_means(model, guide, data, batch_size=batch_size).var(0)


@torch.no_grad()
def _posterior_means(model, guide, data: torch.Tensor, *, batch_size: int) -> torch.Tensor:
    """``E_{q(z|x)}[z]`` for each image, shape ``(N, D)``."""
    _check_data(model, data)
    means = []
    for x in _batches(data, batch_size, False, "activity"):
        q = guide(x)
        means.append(q.mean_estimate() if hasattr(q, "mean_estimate") else q.mean)
    return torch.cat(means)


def active_units(model, guide, data: torch.Tensor, *, batch_size: int = 100,
                 threshold: float = ACTIVITY_THRESHOLD) -> int:
    """How many latent units have activity ``A_u > threshold`` (0.01 in Burda et al.)."""
    return int((latent_activity(model, guide, data, batch_size=batch_size) > threshold).sum())


def evaluate(model, test: torch.Tensor, *, num_samples: int = 5000, iwae_samples=(5, 50), batch_size: int = 100,
             chunk_size: int = 20, compile: bool = False, progress: bool = False) -> dict:
    """Test log-likelihood (``L_K``, ``K = num_samples``), ELBO and ``L_K`` for each K in ``iwae_samples``
    (mean and standard error, nats per image), and active units (per stochastic layer for a model with
    ``latent_dims``). Each estimate draws its own samples. ``compile``: as in ``iwae_per_point``."""
    model.eval()
    started = time.perf_counter()

    def summary(values):
        mean, stderr = mean_and_stderr(values)
        return {"mean": mean, "stderr": stderr}

    options = dict(batch_size=batch_size, chunk_size=chunk_size, compile=compile, progress=progress)

    def per_image(fn):  # each process computes its block of the images; all get every image's value back
        return distributed.map_blocks(fn, test)

    result = {
        "num_images": len(test),
        "log_likelihood": {**summary(per_image(lambda x: iwae_per_point(model, model.guide, x, num_samples,
                                                                        **options))),
                           "num_samples": num_samples},
        "elbo": summary(per_image(lambda x: elbo_per_point(model, model.guide, x, batch_size=batch_size,
                                                           progress=progress))),
        "iwae": {str(k): summary(per_image(lambda x, k=k: iwae_per_point(model, model.guide, x, k, **options)))
                 for k in iwae_samples},
    }
    activity = per_image(lambda x: _posterior_means(model, model.guide, x, batch_size=batch_size)).var(0)
    layers = activity.split(list(getattr(model, "latent_dims", [len(activity)])))
    result["active_units"] = [int((a > ACTIVITY_THRESHOLD).sum()) for a in layers]
    result["latent_dims"] = [len(a) for a in layers]
    result["seconds"] = time.perf_counter() - started
    return result


def evaluate_run(path, *, num_samples: int = 5000, iwae_samples=(5, 50), max_images: int | None = None,
                 batch_size: int = 100, chunk_size: int = 20, compile: bool = False, data_dir=None, device="cpu",
                 seed: int = 0, progress: bool = False, nproc: int = 1) -> dict:
    """``evaluate`` the model of run directory ``path`` on its test set (the first ``max_images`` images, if
    given) and write the result, with the run's epoch, to ``path/evaluation.json``.

    ``nproc``: processes on this machine, each evaluating a block of the images (its noise seeded by
    ``distributed.rank_seed(seed)``); under torchrun each process calls this with ``nproc=1``. Every process
    returns the result; only rank 0 writes it.
    """
    from .train import load_run  # train imports this module for its validation bound

    if max_images is not None:
        check_positive(max_images=max_images)
    options = dict(num_samples=num_samples, iwae_samples=iwae_samples, max_images=max_images, batch_size=batch_size,
                   chunk_size=chunk_size, compile=compile, data_dir=data_dir, device=device, seed=seed,
                   progress=progress)
    if nproc != 1:
        check_positive(nproc=nproc)
        load_run(path, data_dir=data_dir)  # a bad run directory or missing data fails here, in this process
        return distributed.launch(evaluate_run, nproc, path, **options)
    with distributed.joined(device):
        device = distributed.device_of_rank(device)
        run = load_run(path, data_dir=data_dir, device=device)
        torch.manual_seed(distributed.rank_seed(seed))
        test = run.data.test[:max_images].to(device)
        result = {"run": str(run.path), "epoch": run.epoch, "data": run.config.data, "seed": seed,
                  "processes": distributed.world_size(),
                  **evaluate(run.model, test, num_samples=num_samples, iwae_samples=iwae_samples, batch_size=batch_size,
                             chunk_size=chunk_size, compile=compile,
                             progress=progress and distributed.is_main_process())}
        if distributed.is_main_process():
            write_json(Path(path) / "evaluation.json", result)
    return result


# --- ELBO surgery --------------------------------------------------------------------------------------------------

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
DIMENSION_SAMPLES = 5000
CHUNK_SIZE = 512  # draws and mixture components per block: 2 MiB of float64 (larger blocks ran slower)


def diagonal_gaussian(q: Distribution, *, what: str = "q(z|x)") -> tuple[torch.Tensor, torch.Tensor]:
    """``(loc, scale)`` of ``q = Independent(Normal(loc, scale), 1)``, a Gaussian with diagonal covariance."""
    if isinstance(q, Independent) and isinstance(q.base_dist, Normal) and q.reinterpreted_batch_ndims == 1:
        return q.base_dist.loc, q.base_dist.scale
    kind = type(q).__name__ + (f"({type(q.base_dist).__name__})" if isinstance(q, Independent) else "")
    raise ValueError(f"{what} must be a diagonal Gaussian, Independent(Normal(loc, scale), 1), got {kind}")


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
    for draws in _chunks(num_draws, rows, progress=progress, what=what):
        for components in _chunks(num_components, columns):
            block = features[..., draws, :] @ coefficients[..., components, :].mT  # (..., rows, columns)
            log_sum[..., draws] = torch.logaddexp(log_sum[..., draws], _log_sum_exp_last(block))
    return log_sum - math.log(num_components)


@torch.no_grad()  # an evaluation: keeping the graph of every block would cost O(Q·N) memory
def log_aggregate_density(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, *, chunk_size: int = CHUNK_SIZE,
                          progress: bool = False) -> torch.Tensor:
    """``log q(z) = log (1/N) Σ_m N(z; loc_m, diag(scale_m²))``, the mixture of N diagonal Gaussians, exactly.

    ``z: (Q, D)``, ``loc, scale: (N, D)``; returns ``(Q,)`` in float64, from blocks of ``chunk_size`` draws by
    ``chunk_size`` components (``Q·N`` exponentials in all).
    """
    check_positive(chunk_size=chunk_size)
    return _log_mixture_density(z, loc, scale, rows=chunk_size, columns=chunk_size, progress=progress,
                                what="log q(z)")


@torch.no_grad()  # an evaluation: keeping the graph of every block would cost O(Q·N·D) memory
def log_marginal_densities(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, *,
                           chunk_size: int = CHUNK_SIZE, progress: bool = False) -> torch.Tensor:
    """``log q(z_j) = log (1/N) Σ_m N(z_j; loc_mj, scale_mj²)`` for every dimension j: the marginals of the
    mixture, each a mixture of N one-dimensional Gaussians, exactly.

    ``z: (Q, D)``, ``loc, scale: (N, D)``; returns ``(Q, D)`` in float64, from blocks of ``chunk_size // D`` draws
    by ``chunk_size`` components by D dimensions (memory ``O(chunk_size²)``). This is the expensive part of ELBO
    surgery: ``Q·N·D`` exponentials.
    """
    check_positive(chunk_size=chunk_size)
    # the D dimensions are a batch of one-dimensional mixtures: (D, Q, 1) draws, (D, N, 1) components
    log_q = _log_mixture_density(z.T[..., None], loc.T[..., None], scale.T[..., None],
                                 rows=max(1, chunk_size // z.shape[1]), columns=chunk_size, progress=progress,
                                 what="log q(z_j)")
    return log_q.T


def _encode(guide, data: torch.Tensor, batch_size: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``loc, scale: (N, D)`` of the diagonal Gaussian ``q(z|x_n)`` of every point."""
    parts = [diagonal_gaussian(guide(x)) for x in _batches(data, batch_size, progress, "encode")]
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
                 dimension_samples: int = DIMENSION_SAMPLES, batch_size: int = 100, chunk_size: int = CHUNK_SIZE,
                 progress: bool = False) -> dict:
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
    ``dimension_samples · N · D`` exponentials (S = ``num_samples``), in blocks of ``chunk_size²``.
    """
    check_positive(num_samples=num_samples, dimension_samples=dimension_samples, batch_size=batch_size,
                    chunk_size=chunk_size)
    check_one_layer(model, "ELBO surgery")
    _check_data(model, data)
    if len(data) < 2:
        raise ValueError(f"ELBO surgery needs at least 2 data points, got {len(data)}")
    started = time.perf_counter()
    prior = Normal(*(v.double() for v in diagonal_gaussian(model.prior(), what="the prior p(z)")))
    loc, scale = (v.double() for v in _encode(guide, data, batch_size, progress))  # (N, D)
    num_points, latent_dim = loc.shape
    z = loc + scale * torch.randn(num_samples, num_points, latent_dim, dtype=loc.dtype, device=loc.device)  # (S, N, D)
    log_q_own = Normal(loc, scale).log_prob(z).sum(-1)  # (S, N): log q(z | x_n) at z drawn from it
    log_q = log_aggregate_density(z.reshape(-1, latent_dim), loc, scale, chunk_size=chunk_size,
                                  progress=progress).reshape(z.shape[:2])
    log_p = prior.log_prob(z).sum(-1)
    log_likelihood = torch.cat([model.likelihood(z[:, points].to(data.dtype)).log_prob(data[points])
                                for points in _chunks(num_points, batch_size)], 1).double()  # (S, N)
    kl = kl_divergence(Normal(loc, scale), prior).sum(-1).expand(num_samples, -1)  # closed form, (S, N)
    terms = {"reconstruction": log_likelihood, "index_code_mi": log_q_own - log_q, "marginal_kl": log_q - log_p,
             "kl": kl, "elbo": log_likelihood - kl}

    num_chosen = min(num_points, max(2, dimension_samples // num_samples))
    chosen = torch.randperm(num_points, device=z.device)[:num_chosen]
    z_chosen = z[:, chosen].reshape(-1, latent_dim)
    log_q_marginals = log_marginal_densities(z_chosen, loc, scale, chunk_size=chunk_size, progress=progress)  # (S·P, D)
    log_ratio_marginals = (log_q_marginals - prior.log_prob(z_chosen)).reshape(num_samples, num_chosen, -1)
    terms["total_correlation"] = log_q[:, chosen] - log_q_marginals.sum(1).reshape(num_samples, num_chosen)
    terms["dimensionwise_kl"] = log_ratio_marginals.sum(-1)

    result = {"num_points": num_points, "num_samples": num_samples, "dimension_samples": num_chosen * num_samples,
              "latent_dim": latent_dim, "log_num_points": math.log(num_points),
              "standard_errors": (
                  ("Monte Carlo error given the data set" if _given_the_data(num_samples, True) else
                   "over the points (one draw each): an upper bound on the Monte Carlo error given the data set")
                  + ("" if num_chosen == num_points else
                     f"; total correlation and dimension-wise KL: over the {num_chosen} randomly chosen points"))}
    for name in SURGERY_TERMS:
        result[name] = _monte_carlo_summary(terms[name], all_points=terms[name].shape[1] == num_points)
    result["dimensionwise_kl_per_unit"] = log_ratio_marginals.mean((0, 1)).tolist()
    result["seconds"] = time.perf_counter() - started
    return result


def _measured_images(run, data: str | None, data_dir):
    """The data set a run is measured on: its own, or ``data``, another with images of the same size (looked for in
    ``data_dir``, else where the run's own was)."""
    from . import data as datasets  # `data` names the data set here

    if data is None:
        return run.data
    return datasets.load(data, data_dir=run.config.data_dir if data_dir is None else data_dir)


def surgery_run(path, *, split: str = "train", max_points: int | None = 60000, num_samples: int = 1,
                dimension_samples: int = DIMENSION_SAMPLES, data: str | None = None, data_dir=None, device="cpu",
                seed: int = 0, batch_size: int = 100, chunk_size: int = CHUNK_SIZE, progress: bool = False) -> dict:
    """``elbo_surgery`` of the model of run directory ``path`` over the first ``max_points`` images of ``split``
    (of its own data set, or of ``data``: another with images of the same size), written to ``path/surgery.json``.

    The default is the training set, the data the aggregate posterior was fitted to (dynamically binarized images
    binarized once with a fixed seed: ``elbo.data.scored_split``)."""
    from . import data as datasets
    from .train import load_run  # train imports this module for its validation bound

    if max_points is not None:
        check_positive(max_points=max_points)
    run = load_run(path, data_dir=data_dir, device=device)
    images = _measured_images(run, data, data_dir)
    x, _ = datasets.scored_split(images, split)
    torch.manual_seed(seed)
    result = {"run": str(run.path), "epoch": run.epoch, "data": images.name, "split": split, "seed": seed,
              **elbo_surgery(run.model, run.model.guide, x[:max_points].to(device), num_samples=num_samples,
                             dimension_samples=dimension_samples, batch_size=batch_size, chunk_size=chunk_size,
                             progress=progress)}
    write_json(Path(path) / "surgery.json", result)
    return result
