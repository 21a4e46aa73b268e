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

Every function runs under ``torch.no_grad()`` and returns nats (per image), not negated.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from tqdm.auto import tqdm

from . import bounds, distributed
from ._compiler import compiled

__all__ = ["iwae_per_point", "elbo_per_point", "log_likelihood", "mean_and_stderr", "latent_activity",
           "active_units", "evaluate", "evaluate_run", "ACTIVITY_THRESHOLD"]

ACTIVITY_THRESHOLD = 0.01


def _check_positive(**settings) -> None:
    for name, value in settings.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_data(model, data: torch.Tensor) -> None:
    """Check the whole data set once, so that the batches can skip validation (a host sync each)."""
    if hasattr(model, "check_data"):
        model.check_data(data)
    elif data.is_floating_point() and not torch.isfinite(data).all():
        raise ValueError(f"the data must be finite: {int((~torch.isfinite(data)).sum())} values are NaN or inf")


def _batches(data: torch.Tensor, batch_size: int, progress: bool, what: str):
    for start in tqdm(range(0, len(data), batch_size), desc=what, disable=not progress, leave=False):
        yield data[start:start + batch_size]


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
    _check_positive(num_samples=num_samples, batch_size=batch_size, chunk_size=chunk_size)
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
    _check_positive(num_samples=num_samples, batch_size=batch_size)
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
    from .train import _write_atomically, load_run  # train imports this module for its validation bound

    if max_images is not None:
        _check_positive(max_images=max_images)
    options = dict(num_samples=num_samples, iwae_samples=iwae_samples, max_images=max_images, batch_size=batch_size,
                   chunk_size=chunk_size, compile=compile, data_dir=data_dir, device=device, seed=seed,
                   progress=progress)
    if nproc != 1:
        _check_positive(nproc=nproc)
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
            _write_atomically(Path(path) / "evaluation.json", (json.dumps(result, indent=2) + "\n").encode())
    return result
