"""Measuring a trained model of any kind: test log-likelihood by importance sampling, bounds, active units.

- ``iwae_per_point``: ``L_K(x) = log (1/K) Σ_k p(x, z_k) / q(z_k|x)``, ``z_k ~ q(z|x)``, for every point, with the
  K samples drawn in chunks and combined by a running ``logsumexp`` so that memory does not grow with K.
- ``log_likelihood``: ``L_K`` with K = 5000, the standard estimate of ``log p(x)`` (Burda et al. 2015, §5):
  ``E[L_K] ≤ log p(x)`` and ``L_K → log p(x)`` as K grows; mean and standard error over the points.
- ``elbo_per_point``: the ELBO, with the closed-form KL for a ``LatentModel`` (one stochastic layer).
- ``latent_activity`` / ``active_units``: Burda et al.'s activity ``A_u = Cov_x(E_{q(u|x)}[u])``; a unit is active
  when ``A_u > 0.01``.
- ``evaluate(..., ais_steps=T)``: annealed importance sampling (``elbo.ais``) beside them, a stochastic lower bound
  on ``log p(x)`` that tightens as T grows; ``bdmc_steps=T``: on points simulated from the model, the ladder
  ``ELBO ≤ IWAE-K ≤ AIS ≤ log p(x) ≤ BDMC upper`` and so a bracket on ``KL(q(z|x) ‖ p(z|x)) = log p(x) − ELBO``.
- ``evaluate`` gathers all of these on a test set, with the kind's own metrics where it has any;
  ``evaluate_run`` does it for a run directory (settings: ``elbo.configs.EvaluateConfig``) and writes
  ``evaluation.json``. In a group of processes (``evaluate_run(..., nproc=N)``, or torchrun), each process takes a
  contiguous block of the test points, with a random stream of its own, and the per-point values are gathered.

Every function runs under ``torch.no_grad()`` and returns nats (per data point), not negated.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from . import ais, bounds, distributed, schemas
from ._checks import check_device, check_positive
from ._compiler import compiled
from ._files import write_json
from .configs import AIS_CHAINS, AIS_STARTS, EvaluateConfig
from .data import batches, check_data
from .kinds import kind_of
from .likelihoods import DocumentMultinomial
from .protocols import LatentLayers, LatentModel, MeanEstimate
from .runs import load_run, locked

__all__ = ["iwae_per_point", "elbo_per_point", "log_likelihood", "mean_and_stderr", "latent_activity",
           "active_units", "evaluate", "evaluate_run", "ACTIVITY_THRESHOLD"]

ACTIVITY_THRESHOLD = 0.01


@torch.no_grad()
def iwae_per_point(model, guide, data: torch.Tensor, num_samples: int, *, batch_size: int = 100,
                   chunk_size: int = 20, compile: bool = False, progress: bool = False) -> torch.Tensor:
    """``L_K`` for each point of ``data: (N, ...)``, shape ``(N,)``.

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
    check_data(model, data)
    log_joint = functools.partial(bounds.log_joint, model)
    # bounds.log_weights sees the model through its log joint alone, compiled or not
    joint = SimpleNamespace(log_prob=compiled(log_joint, data.device) if compile else log_joint)
    values = []
    for x in batches(data, batch_size, progress, f"IWAE-{num_samples}"):
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
    """The ELBO of each point, shape ``(N,)``: form ``"analytic"`` (closed-form KL) for a ``LatentModel``,
    ``"mc"`` otherwise, with ``num_samples`` samples of ``z`` each."""
    check_positive(num_samples=num_samples, batch_size=batch_size)
    check_data(model, data)
    form = "analytic" if isinstance(model, LatentModel) else "mc"
    return torch.cat([bounds.elbo(model, guide, x, num_samples, form=form, validate_args=False)
                      for x in batches(data, batch_size, progress, "ELBO")])


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error ``std / sqrt(N)`` over the points."""
    values = values.detach().double()
    stderr = values.std() / math.sqrt(len(values)) if len(values) > 1 else torch.tensor(math.nan)
    return float(values.mean()), float(stderr)


def log_likelihood(model, guide, data: torch.Tensor, num_samples: int = 5000, *, batch_size: int = 100,
                   chunk_size: int = 20, compile: bool = False, progress: bool = False) -> tuple[float, float]:
    """Test log-likelihood ``(1/N) Σ_n L_K(x_n)`` in nats and its standard error over the points, K = 5000."""
    return mean_and_stderr(iwae_per_point(model, guide, data, num_samples, batch_size=batch_size,
                                          chunk_size=chunk_size, compile=compile, progress=progress))


def latent_activity(model, guide, data: torch.Tensor, *, batch_size: int = 100) -> torch.Tensor:
    """``A_u = Cov_x(E_{q(u|x)}[u])`` for each latent unit ``u``, shape ``(D,)`` (Burda et al. 2015, §5.2).

    ``E_q[u]`` is ``q.mean``, or ``q.mean_estimate()`` for a guide without a closed-form mean (the upper layers
    of ``elbo.vae.GaussianChain``)."""
    return _posterior_means(model, guide, data, batch_size=batch_size).var(0)


@torch.no_grad()
def _posterior_means(model, guide, data: torch.Tensor, *, batch_size: int) -> torch.Tensor:
    """``E_{q(z|x)}[z]`` for each point, shape ``(N, D)``."""
    check_data(model, data)
    means = []
    for x in batches(data, batch_size, False, "activity"):
        q = guide(x)
        means.append(q.mean_estimate() if isinstance(q, MeanEstimate) else q.mean)
    return torch.cat(means)


def active_units(model, guide, data: torch.Tensor, *, batch_size: int = 100,
                 threshold: float = ACTIVITY_THRESHOLD) -> int:
    """How many latent units have activity ``A_u > threshold`` (0.01 in Burda et al.)."""
    return int((latent_activity(model, guide, data, batch_size=batch_size) > threshold).sum())


def evaluate(model, test: torch.Tensor, *, num_samples: int = 5000, iwae_samples=(5, 50), batch_size: int = 100,
             chunk_size: int = 20, compile: bool = False, progress: bool = False, per_point: dict | None = None,
             ais_steps: int | None = None, bdmc_steps: int | None = None, ais_chains: int | None = None,
             ais_start: str | None = None) -> dict:
    """Test log-likelihood (``L_K``, ``K = num_samples``), ELBO and ``L_K`` for each K in ``iwae_samples``
    (mean and standard error, nats per data point), and active units (``active_units``). Each estimate draws its
    own samples. ``compile``: as in ``iwae_per_point``. ``per_point``: a dict that receives each estimate's
    values for every point (``"log_likelihood"``, ``"elbo"``, ``"iwae-K"``, ``"ais"``), for measures that combine
    them otherwise than by their mean (a topic model's perplexity). ``ais_steps``, ``bdmc_steps``: AIS on the test
    points (``"ais"``: ``_ais``) and BDMC on as many simulated points (``"bdmc"``: ``_bdmc``), with ``ais_chains``
    chains a point (``None``: ``AIS_CHAINS``) started at ``ais_start`` (``None``: ``q(z|x)``)."""
    model.eval()
    started = time.perf_counter()
    options = dict(batch_size=batch_size, chunk_size=chunk_size, compile=compile, progress=progress)
    per_point = {} if per_point is None else per_point

    def summary(name, fn):  # each process computes its block of the points; all get every point's value back
        per_point[name] = distributed.map_blocks(fn, test)
        return _estimate(per_point[name])

    result = {
        "num_points": len(test),
        "log_likelihood": {**summary("log_likelihood",
                                     lambda x: iwae_per_point(model, model.guide, x, num_samples, **options)),
                           "num_samples": num_samples},
        "elbo": summary("elbo", lambda x: elbo_per_point(model, model.guide, x, batch_size=batch_size,
                                                         progress=progress)),
        "iwae": {str(k): summary(f"iwae-{k}", lambda x, k=k: iwae_per_point(model, model.guide, x, k, **options))
                 for k in iwae_samples},
        **_active_units_by_layer(model, test, batch_size=batch_size),
    }
    chains = dict(num_chains=ais_chains or AIS_CHAINS, start=ais_start or AIS_STARTS[0], batch_size=batch_size,
                  progress=progress)
    if ais_steps is not None:
        result["ais"] = _ais(model, test, per_point, ais_steps, **chains)
    if bdmc_steps is not None:
        result["bdmc"] = _bdmc(model, test, bdmc_steps, num_samples=num_samples,
                               iwae_options=dict(options, progress=False), **chains)
    result["seconds"] = time.perf_counter() - started
    return result


def _estimate(values: torch.Tensor) -> dict:
    mean, stderr = mean_and_stderr(values)
    return {"mean": mean, "stderr": stderr}


def _ais(model, test: torch.Tensor, per_point: dict, num_steps: int, *, num_chains: int, start: str,
         batch_size: int, progress: bool) -> dict:
    """AIS on the test points: the mean lower bound and its standard error over the points; ``mc_stderr``, the Monte
    Carlo standard error of that mean (``√(Σ_n se_n²) / N``, ``se_n`` from ``elbo.ais.summary``); the mean ESS of
    the final weights (of ``num_chains``); ``minus_elbo``, AIS − ELBO per point (≤ ``KL(q ‖ p)`` in expectation:
    the inference gap, bounded from below); ``minus_log_likelihood``, AIS − IWAE-K (the importance-sampling gap)."""
    started = time.perf_counter()

    def block(x):
        result = ais.ais_per_point(model, x, num_steps, start=start, num_chains=num_chains, batch_size=batch_size,
                                   progress=progress)
        return torch.stack([result["log_mean_weight"], result["mc_stderr"], result["ess"]], 1)

    lower, mc_stderr, ess = distributed.map_blocks(block, test).unbind(1)
    per_point["ais"] = lower
    return {**_estimate(lower), "mc_stderr": float(mc_stderr.square().sum().sqrt() / len(lower)),
            "ess": float(ess.mean()), "num_steps": num_steps, "num_chains": num_chains, "start": start,
            "minus_elbo": _estimate(lower - per_point["elbo"]),
            "minus_log_likelihood": _estimate(lower - per_point["log_likelihood"]),
            "seconds": time.perf_counter() - started}


def _simulate(model, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, z)``, ``z ~ p(z)``, ``x ~ p(x|z)``, as many as ``like`` has points (``elbo.ais.simulate``); a likelihood
    over documents holds no length, so each simulated document takes the length of its row of ``like``."""
    def sample(likelihood):
        if not isinstance(likelihood, DocumentMultinomial):
            return likelihood.sample()
        lengths = like.sum(-1).round().long().tolist()  # like: word counts (B, V)
        return torch.stack([torch.bincount(torch.multinomial(p, n, replacement=True), minlength=len(p)) if n else
                            torch.zeros(len(p), dtype=torch.long, device=p.device)
                            for p, n in zip(likelihood.probs, lengths)]).to(like.dtype)

    return ais.simulate(model, len(like), sample=sample)


def _bdmc(model, test: torch.Tensor, num_steps: int, *, num_samples: int, iwae_options: dict, num_chains: int,
          start: str, batch_size: int, progress: bool) -> dict:
    """BDMC on as many points simulated from the model as ``test`` has (each process simulates its own block; a
    document model takes the test documents' lengths): the ELBO, IWAE-K (``K = num_samples``), AIS's lower bound
    and the reverse chains' upper bound on ``log p(x)``, the gap between the two (the schedule's: it bounds the
    error of either), and the bracket on ``KL(q ‖ p)``: ``kl_lower`` = AIS − ELBO, ``kl_upper`` = upper − ELBO, per
    point; each as mean and standard error."""
    started = time.perf_counter()

    def block(like):
        x, z = _simulate(model, like)
        result = ais.bdmc_per_point(model, x, z, num_steps, start=start, num_chains=num_chains,
                                    batch_size=batch_size, progress=progress)
        elbo = elbo_per_point(model, model.guide, x, batch_size=batch_size)
        iwae = iwae_per_point(model, model.guide, x, num_samples, **iwae_options)
        return torch.stack([elbo.double(), iwae.double(), result["lower"], result["upper"]], 1)

    elbo, iwae, lower, upper = distributed.map_blocks(block, test).unbind(1)
    return {"num_points": len(test), "num_steps": num_steps, "num_chains": num_chains, "start": start,
            "num_samples": num_samples, "elbo": _estimate(elbo), "iwae": _estimate(iwae), "lower": _estimate(lower),
            "upper": _estimate(upper), "gap": _estimate(upper - lower), "kl_lower": _estimate(lower - elbo),
            "kl_upper": _estimate(upper - elbo), "seconds": time.perf_counter() - started}


def _active_units_by_layer(model, test: torch.Tensor, *, batch_size: int) -> dict:
    """``active_units`` and ``latent_dims``, one entry per stochastic layer (``latent_dims`` of a ``LatentLayers``
    model; one layer for a vector latent otherwise); both ``None`` when q's event is not a vector (a trajectory
    ``z: (T, d)``, say), whose units are not what Burda et al. counted."""
    means = distributed.map_blocks(lambda x: _posterior_means(model, model.guide, x, batch_size=batch_size), test)
    if means.dim() != 2:
        return {"active_units": None, "latent_dims": None}
    activity = means.var(0)
    layers = activity.split(list(model.latent_dims if isinstance(model, LatentLayers) else [len(activity)]))
    return {"active_units": [int((a > ACTIVITY_THRESHOLD).sum()) for a in layers],
            "latent_dims": [len(a) for a in layers]}


def evaluate_run(path, *, data_dir=None, device="cpu", progress: bool = False, nproc: int = 1, **settings) -> dict:
    """``evaluate`` the model of run directory ``path`` on its test set and write the result, with the run's epoch
    and the kind's own metrics (if it has any), to ``path/evaluation.json``. ``settings``: the fields of
    ``elbo.configs.EvaluateConfig`` (``num_samples``, ``iwae_samples``, ``max_points``, ``batch_size``,
    ``chunk_size``, ``compile``, ``seed``).

    ``nproc``: processes on this machine, each evaluating a block of the points (its noise seeded by
    ``distributed.rank_seed(seed)``); under torchrun each process calls this with ``nproc=1``. Every process
    returns the result; only rank 0 writes it.
    """
    config = EvaluateConfig(**settings)
    check_positive(nproc=nproc)
    check_device(device)
    with locked(path):
        if nproc != 1:
            load_run(path, data_dir=data_dir)  # a bad run directory or missing data fails here, in this process
            return distributed.launch(evaluate_run, nproc, path, data_dir=data_dir, device=device,
                                      progress=progress, **settings)
        return _evaluate_run(path, config, data_dir=data_dir, device=device, progress=progress)


def _evaluate_run(path, config: EvaluateConfig, *, data_dir, device, progress: bool) -> dict:
    with distributed.joined(device):
        device = distributed.device_of_rank(device)
        run = load_run(path, data_dir=data_dir, device=device)
        torch.manual_seed(distributed.rank_seed(config.seed))
        test = run.data.test[:config.max_points].to(device)
        options = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("max_points", "seed")}
        if config.num_samples is None:
            options["num_samples"] = kind_of(run.config.model).num_samples
        per_point = {}
        result = {"run": str(run.path), "epoch": run.epoch, "data": run.config.data, "unit": run.unit,
                  "seed": config.seed, "processes": distributed.world_size(),
                  **evaluate(run.model, test, **options, progress=progress and distributed.is_main_process(),
                             per_point=per_point)}
        with torch.no_grad():
            metrics = kind_of(run.config.model).call("metrics", run, test, per_point)
        numbers = {key: value for key, value in (metrics or {}).items()
                   if schemas.NUMBER_OR_NAN.accepts(value)}  # what evaluation.json's schema takes there
        if numbers:
            result["metrics"] = numbers
        if len(numbers) < len(metrics or {}):  # e.g. a topic model's top words
            result["details"] = {key: value for key, value in metrics.items() if key not in numbers}
        if distributed.is_main_process():
            write_json(Path(path) / "evaluation.json", result)
    return result
