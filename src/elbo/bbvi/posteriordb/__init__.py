"""posteriordb's reference posteriors (Magnusson et al. 2024) as ``elbo.Model``s, with their gold-standard draws.

``../shared/data/posteriordb`` holds posteriordb's posteriors: each a Stan model, its data and 10,000 reference
draws from long NUTS runs. This package holds a port of each Stan model's log density to an ``Ops`` vocabulary
(``_ops``), written once for one draw and run by torch (``load``) or by JAX (``benchmarks/posteriordb.py``'s
NumPyro peers), and the draws to compare against::

    posterior = elbo.posteriordb.load("eight_schools-eight_schools_noncentered", "../shared/data/posteriordb")
    fit = elbo.fit(posterior.model)
    errors = posterior.errors(fit.draws)      # per reference quantity: (mean_q - mean_ref) / sd_ref, ...

A port is a module of ``ports/`` named after the Stan model, with

- ``POSTERIORS``: the posteriordb names of the posteriors it serves (one model, several data sets);

- ``params(data) -> {name: Spec}``: the Stan parameters, their shapes and constraints;
- ``transform_data(data) -> data``: Stan's transformed data, with numpy (optional);
- ``log_density(ops, p, data) -> scalar``: ``log p(data, p)`` for one draw ``p = {name: array of Spec.shape}``,
  with Stan's constrained parameters (the Jacobians of the constraints are added by ``elbo.Model`` or NumPyro);
- ``generated(ops, p, data) -> {name: array}`` (optional): the transformed parameters and generated quantities
  that the reference draws hold and ``params`` does not (``theta = mu + tau * theta_trans``);
- ``from_reference(draws, data) -> {name: array (S, *shape)}`` (optional, numpy): the parameters from reference
  draws that do not hold them all (``theta_trans = (theta - mu) / tau``); by default they are read by name.

``Posterior.score_check`` checks a port against the reference draws without any sampler: at draws z of the
posterior (unconstrained), the score ``g = ∇ log p(z)`` has ``E[g] = 0`` and ``E[g_i (z_i - E z_i)] = -1`` (Stein's
identity, integration by parts), which a log density wrong by more than a constant breaks.

Reference quantities are named as in posteriordb, Stan's 1-based ``theta[1]``, ``L[2,1]``.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import pkgutil
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.distributions import constraints

from ...errors import InputError
from ..constraints import ordered_vector
from ..model import Model, Param
from ..result import summarize
from ._ops import TORCH, jax_ops

__all__ = ["Spec", "Posterior", "load", "POSTERIORS", "reference_draws", "stan_names", "jax_ops"]


def _registry() -> dict:
    """posteriordb's name -> the port's module name, from each port's ``POSTERIORS`` (a new port is a new file)."""
    from . import ports

    registry = {}
    for module_info in sorted(pkgutil.iter_modules(ports.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{ports.__name__}.{module_info.name}")
        registry |= {name: module_info.name for name in module.POSTERIORS}
    return registry


@dataclass(frozen=True)
class Spec:
    """A Stan parameter: ``shape`` and ``constraint``, one of ``"real"``, ``"lower"`` (``> lower``), ``"upper"``
    (``< upper``), ``"interval"`` (``lower < y < upper``), ``"simplex"``, ``"ordered"``, ``"corr_cholesky"``
    (Stan's ``positive_ordered`` is written as positive gaps and a cumulative sum, as in ``ports/hmm_example``)."""

    shape: tuple = ()
    constraint: str = "real"
    lower: float | None = None
    upper: float | None = None

    def torch_constraint(self):
        kind = self.constraint
        if kind == "real":
            return constraints.real
        if kind == "lower":
            return constraints.positive if self.lower == 0 else constraints.greater_than(self.lower)
        if kind == "upper":
            return constraints.less_than(self.upper)
        if kind == "interval":
            return constraints.unit_interval if (self.lower, self.upper) == (0, 1) else \
                constraints.interval(self.lower, self.upper)
        if kind == "simplex":
            return constraints.simplex
        if kind == "ordered":
            return ordered_vector
        if kind == "corr_cholesky":
            return constraints.corr_cholesky
        raise ValueError(f"unknown constraint {kind!r}")

    def numpyro_constraint(self):
        from numpyro.distributions import constraints as c

        kind = self.constraint
        return {"real": lambda: c.real, "lower": lambda: c.greater_than(self.lower),
                "upper": lambda: c.less_than(self.upper), "interval": lambda: c.interval(self.lower, self.upper),
                "simplex": lambda: c.simplex, "ordered": lambda: c.ordered_vector,
                "corr_cholesky": lambda: c.corr_cholesky}[kind]()


def lower(bound=0.0, shape=()):
    return Spec(tuple(shape), "lower", lower=bound)


def stan_names(name: str, shape: tuple) -> list[str]:
    """``mu`` for a scalar, ``theta[1]``, ..., ``L[2,1]`` (Stan's 1-based, row-major names) for a tensor."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i + 1) for i in index)}]" for index in itertools.product(*map(range, shape))]


def reference_draws(name: str, data_dir) -> dict:
    """The 10,000 reference draws of ``name``: ``{quantity: float64 array (10000,)}``, the 10 chains concatenated."""
    path = Path(data_dir) / "draws" / f"{name}.json.zip"
    with zipfile.ZipFile(path) as archive:
        chains = json.loads(archive.read(archive.namelist()[0]))
    return {key: np.concatenate([np.asarray(chain[key], dtype=np.float64) for chain in chains]) for key in chains[0]}


def _read_data(name: str, data_dir) -> dict:
    info = json.loads((Path(data_dir) / "posteriors" / f"{name}.json").read_text())
    with zipfile.ZipFile(Path(data_dir) / "data" / f"{info['data_name']}.json.zip") as archive:
        raw = json.loads(archive.read(archive.namelist()[0]))
    return {key: np.asarray(value) for key, value in raw.items()}


@dataclass(eq=False)
class Posterior:
    """A reference posterior: the port, its data, the ``elbo.Model`` and the reference draws."""

    name: str
    port: object = field(repr=False)
    data: dict = field(repr=False)  # numpy, after transform_data
    specs: dict = field(repr=False)
    reference: dict = field(repr=False)  # {quantity: (10000,) numpy}

    def backend_data(self, ops) -> dict:
        """The data as arrays of ``ops``'s library: floats in its default (torch) or float64 (JAX) dtype, integers
        as integers."""
        return {key: ops.asarray(value) if np.issubdtype(np.asarray(value).dtype, np.floating)
                else (torch.as_tensor(value) if ops.name == "torch" else ops.xp.asarray(value))
                for key, value in self.data.items()}

    def log_density_fn(self, ops):
        """``p -> log p(data, p)`` for one draw, in ``ops``'s library."""
        data = self.backend_data(ops)
        return lambda p: self.port.log_density(ops, p, data)

    def quantities_fn(self, ops):
        """``p -> {name: array}``: the parameters and the ``generated`` quantities, for one draw."""
        data = self.backend_data(ops)
        generated = getattr(self.port, "generated", None)
        return lambda p: {**p, **(generated(ops, p, data) if generated else {})}

    @cached_property
    def model(self) -> Model:
        """The posterior as an ``elbo.Model``: the port's log density in torch, vectorized over draws."""
        return Model(params={name: Param(spec.shape, spec.torch_constraint()) for name, spec in self.specs.items()},
                     log_joint=self.log_density_fn(TORCH), vectorize=True)

    def quantities(self, draws: dict) -> dict:
        """``{reference quantity: (S,) tensor}`` for constrained draws ``{name: (S, *shape)}`` of the parameters."""
        values = torch.func.vmap(self.quantities_fn(TORCH))(draws)
        flat = {}
        for name, value in values.items():
            for i, component in enumerate(stan_names(name, tuple(value.shape[1:]))):
                flat[component] = value.reshape(value.shape[0], -1)[:, i]
        missing = set(self.reference) - set(flat)
        if missing:
            raise ValueError(f"the port of {self.name} gives no {sorted(missing)} of the reference draws")
        return {key: flat[key] for key in self.reference}

    def reference_params(self) -> dict:
        """The reference draws of the parameters: ``{name: (10000, *shape)}`` tensors, constrained."""
        from_reference = getattr(self.port, "from_reference", None)
        if from_reference is not None:
            values = from_reference(self.reference, self.data)
        else:
            values = {name: np.stack([self.reference[key] for key in stan_names(name, spec.shape)], -1)
                      .reshape(-1, *spec.shape) for name, spec in self.specs.items()}
        return {name: torch.as_tensor(np.asarray(value), dtype=torch.get_default_dtype())
                for name, value in values.items()}

    def score_check(self, num_draws: int = 10_000) -> dict:
        """Stein's identities at the first ``num_draws`` reference draws, in standard errors: ``mean_score``, the
        largest ``|mean g_i| / se``; ``stein``, the largest ``|mean g_i (z_i - z̄_i) + 1| / se`` over coordinates i
        of the unconstrained z. Both are about N(0, 1) per coordinate for a correct port (the draws are nearly
        independent: posteriordb's effective sample sizes are about 10,000)."""
        model = self.model
        params = {name: value[:num_draws] for name, value in self.reference_params().items()}
        z = model.unconstrain(params).detach().requires_grad_(True)
        (score,) = torch.autograd.grad(model.log_density(z).sum(), z)
        z = z.detach()
        n = z.shape[0]
        mean_score = score.mean(0).abs() / (score.std(0) / math.sqrt(n))
        stein_terms = score * (z - z.mean(0))
        stein = (stein_terms.mean(0) + 1).abs() / (stein_terms.std(0) / math.sqrt(n))
        return {"mean_score": mean_score.max().item(), "stein": stein.max().item(), "dim": model.dim}

    def gaussian_khat(self, num_draws: int = 10_000, *, seed: int = 0) -> float:
        """k̂ of the Gaussian fitted to the reference draws in the unconstrained space (their mean and covariance)
        as q for this posterior: below 0.5, a Gaussian q can represent it (issue 11's "posteriors a Gaussian can
        represent")."""
        from .. import psis

        z = self.model.unconstrain(self.reference_params())
        generator = torch.Generator().manual_seed(seed)
        q = torch.distributions.MultivariateNormal(z.mean(0), covariance_matrix=torch.cov(z.T).reshape(
            z.shape[1], z.shape[1]))
        draws = q.loc + torch.randn(num_draws, z.shape[1], generator=generator) @ q.scale_tril.T
        with torch.no_grad():
            log_w = self.model.log_density(draws) - q.log_prob(draws)
        return psis.psis(torch.where(torch.isnan(log_w), -math.inf, log_w)[torch.isfinite(log_w)])[1]

    def errors(self, draws: dict, weights: torch.Tensor | None = None) -> dict:
        """Per reference quantity, ``(mean - mean_ref) / sd_ref`` and ``(sd - sd_ref) / sd_ref`` of ``draws``
        (weighted by normalized ``weights`` of shape ``(S,)`` when given: PSIS-reweighted estimates);
        quantities whose reference sd is 0 are left out."""
        rows = {}
        for key, row in summarize(self.quantities(draws), quantiles=(), weights=weights).items():
            ref = self.reference[key]
            if ref.std() == 0:
                continue
            rows[key] = {"mean_error": (row["mean"] - ref.mean()) / ref.std(ddof=1),
                         "sd_error": (row["sd"] - ref.std(ddof=1)) / ref.std(ddof=1)}
        return rows


POSTERIORS = _registry()


def load(name: str, data_dir) -> Posterior:
    """posteriordb's posterior ``name`` (a key of ``POSTERIORS``) from ``data_dir`` (``../shared/data/posteriordb``)."""
    if name not in POSTERIORS:
        raise InputError(f"no port of posterior {name!r}; ported: {', '.join(sorted(POSTERIORS))}", argument="name")
    data_dir = Path(data_dir)
    if not (data_dir / "posteriors" / f"{name}.json").is_file():
        raise FileNotFoundError(f"no posteriordb posterior {name} in {data_dir} (expected posteriors/{name}.json)")
    port = importlib.import_module(f"{__name__}.ports.{POSTERIORS[name]}")
    data = _read_data(name, data_dir)
    transform = getattr(port, "transform_data", None)
    data = transform(data) if transform else data
    return Posterior(name=name, port=port, data=data, specs=port.params(data),
                     reference=reference_draws(name, data_dir))
