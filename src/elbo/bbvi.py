"""Black-box VI for user-defined models: named, constrained parameters and a log joint density.

A model is parameters ``y = {name: y_name}``, each with a shape and a constraint, and ``log p(x, y)``. VI happens
in the unconstrained space (ADVI, Kucukelbir et al. 2017): each parameter is ``y = T(u)`` with the bijection
``T = torch.distributions.biject_to(constraint)``, and the density of ``u`` carries the Jacobian,

    log p(x, u) = log p(x, T(u)) + log |det ∂T(u)/∂u|.

All unconstrained coordinates, flattened and concatenated, form ``z`` of shape ``(D,)``; sizes differ from the
constrained shapes (a simplex of n entries has n - 1 free coordinates, a Cholesky factor of an n × n
correlation matrix n(n-1)/2). q is a family from ``elbo.families`` over ``z``, fitted by maximising the ELBO
``E_q[log p(x, z) - log q(z)]`` with ``elbo.bounds.elbo``.

The model meets ``elbo.bounds`` as a model with one global posterior: ``model.log_prob(x, z)`` takes
``z: (K, 1, D)`` and ``x: (1, B)``, the indices of the ``B`` data points the log-likelihood is summed over
(``model.data_indices()``; empty for a model given as a single ``log_joint``), and returns ``(K, 1)``. With
``B < N`` the log-likelihood is that of a minibatch scaled by ``N / B``, an unbiased estimate of the full one
(Hoffman et al. 2013). The guide ignores x and has ``batch_shape (1,)``. ``form="analytic"`` is refused by
``elbo.bounds``: such a model has no ``prior()``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import runpy
import statistics
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch.distributions import Transform, biject_to, constraints
from torch.distributions.constraints import Constraint
from tqdm.auto import tqdm

from . import bounds, diagnostics, estimators, families
from ._optional import require

__all__ = ["Param", "Model", "FitConfig", "Fit", "fit", "load_model", "summarize", "relative_changes", "has_converged",
           "ordered_vector", "OrderedTransform", "FAMILIES", "ESTIMATORS", "seeded"]

FAMILIES = {"meanfield": families.MeanField, "fullrank": families.FullRank, "lowrank": families.LowRank,
            "flow": families.Flow}
ESTIMATORS = ("stl", "reparam", "score")  # of the ELBO's gradient; stl (the default) for a reparameterizable q


class _OrderedVector(Constraint):
    """Vectors with strictly increasing entries ``y_1 < y_2 < ... < y_n``."""

    is_discrete = False
    event_dim = 1

    def check(self, value):
        return (value[..., 1:] > value[..., :-1]).all(-1)

    def __repr__(self):
        return "OrderedVector()"


# torch.distributions has no ordered-vector constraint (Pyro and NumPyro have one).
ordered_vector = _OrderedVector()


class OrderedTransform(Transform):
    """``u ↦ y`` with ``y_1 = u_1``, ``y_i = y_{i-1} + exp(u_i)``. The Jacobian is triangular with diagonal
    ``(1, exp(u_2), ..., exp(u_n))``, so ``log |det ∂y/∂u| = Σ_{i≥2} u_i``."""

    domain = constraints.real_vector
    codomain = ordered_vector
    bijective = True
    sign = +1

    def __eq__(self, other):
        return isinstance(other, OrderedTransform)

    def _call(self, u):
        return torch.cat([u[..., :1], u[..., 1:].exp()], -1).cumsum(-1)

    def _inverse(self, y):
        return torch.cat([y[..., :1], (y[..., 1:] - y[..., :-1]).log()], -1)

    def log_abs_det_jacobian(self, u, y):
        return u[..., 1:].sum(-1)


biject_to.register(_OrderedVector, lambda constraint: OrderedTransform())


@dataclass(frozen=True)
class Param:
    """A named parameter of a ``Model``: its constrained ``shape`` and ``constraint`` (a torch constraint).

    Supported: every constraint ``torch.distributions.biject_to`` knows, among them ``constraints.real``,
    ``positive``, ``unit_interval``, ``greater_than(a)``, ``less_than(b)``, ``interval(a, b)``, ``simplex``,
    ``corr_cholesky``, and ``elbo.ordered_vector``.
    """

    shape: tuple[int, ...] = ()
    constraint: Constraint = constraints.real

    def __post_init__(self):
        shape = (self.shape,) if isinstance(self.shape, int) else self.shape
        try:
            shape = tuple(shape)
            if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
                raise TypeError
        except TypeError:
            raise ValueError(f"Param shape must be a tuple of positive integers, got {self.shape!r}") from None
        object.__setattr__(self, "shape", shape)
        if not isinstance(self.constraint, Constraint):
            raise ValueError(f"Param constraint must be a torch.distributions constraint, got {self.constraint!r}")
        if len(shape) < self.constraint.event_dim:
            raise ValueError(f"constraint {self.constraint} is on {self.constraint.event_dim}-dimensional values; "
                             f"Param shape {shape} has {len(shape)} dimensions")
        try:
            self.transform.inverse_shape(shape)
        except NotImplementedError:
            raise ValueError(f"unknown constraint {self.constraint}: torch.distributions.biject_to has no "
                             f"bijection onto it; use real, positive, unit_interval, greater_than, less_than, "
                             f"interval, simplex, corr_cholesky or elbo.ordered_vector") from None
        except ValueError as error:
            raise ValueError(f"Param shape {shape} does not fit constraint {self.constraint}: {error}") from None

    @property
    def transform(self) -> Transform:
        """``T = biject_to(constraint)`` from the unconstrained space onto the constraint."""
        return biject_to(self.constraint)

    @property
    def unconstrained_shape(self) -> tuple[int, ...]:
        return tuple(self.transform.inverse_shape(self.shape))


def _index(data, indices: torch.Tensor):
    """Rows ``indices`` of ``data``: a tensor, or a tuple or dict of tensors with the same first dimension."""
    if isinstance(data, torch.Tensor):
        return data[indices]
    if isinstance(data, dict):
        return {key: value[indices] for key, value in data.items()}
    return tuple(value[indices] for value in data)


def _first_tensor(data) -> torch.Tensor:
    return data if isinstance(data, torch.Tensor) else next(iter(data.values() if isinstance(data, dict) else data))


def _num_data(data) -> int:
    tensors = list(data.values()) if isinstance(data, dict) else [data] if isinstance(data, torch.Tensor) else data
    if not isinstance(data, (torch.Tensor, tuple, list, dict)) or not tensors or not all(
            isinstance(t, torch.Tensor) and t.dim() >= 1 for t in tensors):
        raise ValueError(f"data must be a tensor, or a tuple or dict of tensors, with the data points along "
                         f"dimension 0; got {type(data).__name__}")
    sizes = {t.shape[0] for t in tensors}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"data tensors must have the same number N >= 1 of data points along dimension 0, "
                         f"got shapes {[tuple(t.shape) for t in tensors]}")
    return sizes.pop()


class Model:
    """A user's model: named constrained parameters and a log joint density, in one of two ways.

    - ``Model(params=..., log_joint=f)``: ``f(p)`` gets ``p = {name: tensor of shape (S, *param.shape)}``
      (constrained) and returns ``log p(x, p)`` of shape ``(S,)``, the data closed over.
    - ``Model(params=..., log_prior=f, log_likelihood=g, data=data)``: ``log p(x, p) = f(p) + Σ_n g(p, x)_n``
      with ``f(p): (S,)`` and ``g(p, batch): (S, B)`` the per-datapoint log-likelihood of ``batch``, rows of
      ``data`` (a tensor, or tuple or dict of tensors, N data points along dimension 0). This form lets ``fit``
      subsample: the log-likelihood of a minibatch of B points scaled by N/B.

    With ``vectorize=True`` the functions are written for one draw (``p[name]`` of shape ``param.shape``;
    ``log_joint`` and ``log_prior`` return a scalar, ``log_likelihood`` shape ``(B,)``) and are vectorized over
    the draws with ``torch.func.vmap``.
    """

    def __init__(self, *, params: dict, log_joint=None, log_prior=None, log_likelihood=None, data=None,
                 vectorize: bool = False):
        if not isinstance(params, dict) or not params:
            raise ValueError(f"params must be a non-empty dict of name -> elbo.Param, got {params!r}")
        for name, param in params.items():
            if not isinstance(name, str) or not isinstance(param, Param):
                raise ValueError(f"params must map names (str) to elbo.Param, got {name!r}: {param!r}")
        if log_joint is not None and (log_prior, log_likelihood, data) != (None, None, None):
            raise ValueError("give either log_joint, or log_prior, log_likelihood and data; not both")
        if log_joint is None and (log_prior is None or log_likelihood is None or data is None):
            raise ValueError("give log_joint(p), or all of log_prior(p), log_likelihood(p, batch) and data")
        for name, fn in (("log_joint", log_joint), ("log_prior", log_prior), ("log_likelihood", log_likelihood)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{name} must be callable, got {type(fn).__name__}")
        if not isinstance(vectorize, bool):
            raise ValueError(f"vectorize must be True or False, got {vectorize!r}")
        self.params = dict(params)
        self.log_joint, self.log_prior, self.log_likelihood = log_joint, log_prior, log_likelihood
        self.data = data
        self.num_data = 0 if data is None else _num_data(data)
        self.vectorize = vectorize
        self._transforms = {name: param.transform for name, param in params.items()}
        self._unconstrained_shapes = {name: param.unconstrained_shape for name, param in params.items()}
        self.dim = sum(math.prod(shape) for shape in self._unconstrained_shapes.values())

    def __repr__(self):
        params = ", ".join(f"{name}: {param.shape} {param.constraint}" for name, param in self.params.items())
        return f"Model({params}; D = {self.dim} unconstrained, N = {self.num_data} data points)"

    # --- the unconstrained space ---------------------------------------------------------------------------

    def _split(self, z: torch.Tensor) -> dict:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must have shape (S, D) = (S, {self.dim}), got {tuple(z.shape)}")
        sizes = [math.prod(shape) for shape in self._unconstrained_shapes.values()]
        return {name: u.reshape(z.shape[0], *self._unconstrained_shapes[name])
                for name, u in zip(self.params, z.split(sizes, dim=1))}

    def _constrain(self, z: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """``p = {name: T(u_name)}`` and ``Σ log |det ∂T/∂u|`` of shape ``(S,)`` for ``z: (S, D)``."""
        p, log_det = {}, z.new_zeros(z.shape[0])
        for name, u in self._split(z).items():
            p[name] = self._transforms[name](u)
            log_det = log_det + self._transforms[name].log_abs_det_jacobian(u, p[name]).reshape(z.shape[0], -1).sum(1)
        return p, log_det

    def constrain(self, z: torch.Tensor) -> dict:
        """``{name: T(u_name)}``, each of shape ``(S, *param.shape)``, for ``z: (S, D)``."""
        return self._constrain(z)[0]

    def unconstrain(self, p: dict) -> torch.Tensor:
        """The inverse of ``constrain``: ``z: (S, D)`` for ``p = {name: (S, *param.shape)}``."""
        return torch.cat([self._transforms[name].inv(p[name]).reshape(p[name].shape[0], -1)
                          for name in self.params], dim=1)

    def log_density(self, z: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x, T(z)) + log |det ∂T/∂z|`` of shape ``(S,)`` for ``z: (S, D)``.

        ``indices`` (shape ``(B,)``) restricts the log-likelihood to those data points and scales it by ``N/B``,
        an unbiased estimate of the full-data value over a uniformly drawn minibatch; ``None`` uses all data.
        """
        p, log_det = self._constrain(z)
        if self.log_joint is not None:
            if indices is not None and indices.numel() > 0:
                raise ValueError("this model has no data to subsample: it was given as a single log_joint")
            return self._call("log_joint", p) + log_det
        batch = self.data if indices is None else _index(self.data, indices)
        num_batch = self.num_data if indices is None else indices.shape[0]
        log_likelihood = self._call("log_likelihood", p, batch, num_batch=num_batch)
        return self._call("log_prior", p) + self.num_data / num_batch * log_likelihood.sum(1) + log_det

    def _call(self, name: str, p: dict, *batch, num_batch: int | None = None) -> torch.Tensor:
        """Call a user function over all draws and check it returned one value per draw (and data point)."""
        fn = getattr(self, name)
        if self.vectorize:
            fn = torch.func.vmap(fn, in_dims=(0, *[None] * len(batch)))
        value = fn(p, *batch)
        num_draws = next(iter(p.values())).shape[0]
        expected = (num_draws,) if num_batch is None else (num_draws, num_batch)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            if self.vectorize:
                hint = f"written for one draw, it must return {'a scalar' if num_batch is None else '(B,)'}"
            else:
                hint = (f"it gets each parameter with a leading dimension of draws (S = {num_draws}); "
                        f"to write it for one draw, pass vectorize=True")
            raise ValueError(f"{name} returned {got}, expected shape {expected}: {hint}")
        return value

    # --- as elbo.bounds sees it ----------------------------------------------------------------------------

    def data_indices(self, batch_size: int | None = None) -> torch.Tensor:
        """``x`` for ``elbo.bounds``: shape ``(1, B)``, the indices of all data points, or of ``batch_size`` of
        them drawn uniformly without replacement; shape ``(1, 0)`` for a model given as a single log_joint."""
        device = None if self.data is None else _first_tensor(self.data).device
        if batch_size is None or batch_size >= self.num_data:
            return torch.arange(self.num_data, device=device).unsqueeze(0)
        return torch.randperm(self.num_data, device=device)[:batch_size].unsqueeze(0)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x, z)`` of shape ``(K, 1)`` for ``z: (K, 1, D)`` unconstrained and ``x = data_indices()``."""
        if x.dim() != 2 or x.shape[0] != 1 or z.dim() != 3 or z.shape[1] != 1:
            raise ValueError(f"an elbo.Model has one global posterior: expected x of shape (1, B) (from "
                             f"model.data_indices()) and z of shape (K, 1, {self.dim}); got x {tuple(x.shape)}, "
                             f"z {tuple(z.shape)}")
        indices = None if self.log_joint is not None else x[0]
        return self.log_density(z[:, 0], indices).unsqueeze(1)

    def initial_point(self, *, num_tries: int = 100) -> torch.Tensor:
        """The first of ``z = 0`` and ``num_tries - 1`` draws uniform in ``[-2, 2]^D`` (as Stan) where the
        log density is finite; shape ``(D,)``."""
        candidates = torch.cat([torch.zeros(1, self.dim), 4 * torch.rand(num_tries - 1, self.dim) - 2])
        with torch.no_grad():
            log_p = self.log_density(candidates)
        finite = torch.isfinite(log_p).nonzero()
        if len(finite) == 0:
            shown = ", ".join(str(v) for v in log_p[:3].tolist())
            raise ValueError(f"the log density is NaN or inf at every one of the {num_tries} initial points tried "
                             f"(0 and uniform draws in [-2, 2]^{self.dim} in the unconstrained space; values "
                             f"{shown}, ...): check log_joint and the parameters' constraints")
        return candidates[finite[0, 0]]


def load_model(path) -> Model:
    """Run the Python file at ``path`` and return the ``elbo.Model`` it defines as ``model``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    namespace = runpy.run_path(str(path), run_name="__elbo_model__")  # not "__main__": skip the file's own script
    if "model" not in namespace:
        raise ValueError(f"{path} does not define `model` (an elbo.Model)")
    if not isinstance(namespace["model"], Model):
        raise ValueError(f"`model` in {path} is a {type(namespace['model']).__name__}, expected an elbo.Model")
    return namespace["model"]


# --- fitting ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitConfig:
    """Settings of ``fit``, validated on construction.

    - ``family``: q, one of ``"meanfield"``, ``"fullrank"``, ``"lowrank"`` (rank 2), ``"flow"`` (``elbo.families``);
    - ``num_samples``: draws of q per step for the ELBO estimate;
    - ``estimator``: ``"stl"`` (Roeder et al. 2017; with the ELBO's ``"mc"`` form), ``"reparam"`` or ``"score"``
      (with its ``"entropy"`` form: the entropy in closed form where the family has one);
    - ``lr``, ``lr_decay_steps``: Adam with learning rate ``lr / (1 + t / lr_decay_steps)`` at step t;
    - ``init_scale``: q starts at ``Model.initial_point()`` with this scale in every coordinate (1, as Stan);
    - ``window``, ``rel_tol``, ``max_steps``: stop when the relative change of the mean ELBO from one window of
      ``window`` steps to the next has a median below ``rel_tol`` over the last 5 windows (``has_converged``), or
      after ``max_steps``. A relative tolerance is loose where |ELBO| is large: 3e-4 of 500 nats is 0.15 nats
      per window; lower it (or raise ``max_steps``) for such models;
    - ``batch_size``: minibatches of that many data points, the log-likelihood scaled by N/B (a model given with
      ``data``); ``None``: all data every step;
    - ``num_draws``: draws of the final q for the diagnostics (k̂, log evidence, summaries);
    - ``seed``: seeds torch's generator for this fit only (``None``: the caller's generator);
    - ``progress``: a tqdm progress bar.
    """

    family: str = "fullrank"
    num_samples: int = 8
    estimator: str = "stl"
    lr: float = 0.1
    lr_decay_steps: int = 300
    init_scale: float = 1.0
    window: int = 100
    rel_tol: float = 3e-4
    max_steps: int = 10_000
    batch_size: int | None = None
    num_draws: int = 10_000
    seed: int | None = None
    progress: bool = True

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}: use one of {', '.join(map(repr, FAMILIES))}")
        estimators.check_estimator(self.estimator, ESTIMATORS, bound="elbo.fit")
        for name in ("num_samples", "lr_decay_steps", "window", "max_steps", "num_draws"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.num_draws < 2:
            raise ValueError(f"num_draws must be >= 2 (for k̂ and the evidence's stderr), got {self.num_draws}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch_size must be None or an integer >= 1, got {self.batch_size!r}")
        for name in ("lr", "rel_tol", "init_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise ValueError(f"seed must be None or an integer, got {self.seed!r}")


def relative_changes(elbo_trace, window: int) -> list[float]:
    """``|m_i - m_{i-1}| / |m_i|`` for the means ``m_i`` of the ELBO over consecutive windows of ``window`` steps."""
    means = [sum(elbo_trace[start:start + window]) / window
             for start in range(0, len(elbo_trace) - window + 1, window)]
    return [abs(m - previous) / abs(m) if m != 0 else math.inf for previous, m in zip(means, means[1:])]


def has_converged(elbo_trace, window: int, rel_tol: float, *, num_changes: int = 5) -> bool:
    """Stan's ADVI rule: the median of the last ``num_changes`` relative changes of the windowed mean ELBO is below
    ``rel_tol``. The median ignores the odd window that looks flat by chance in a noisy ELBO."""
    changes = relative_changes(elbo_trace, window)[-num_changes:]
    return len(changes) == num_changes and statistics.median(changes) < rel_tol


def _guide(config: FitConfig, dim: int, loc: torch.Tensor):
    if config.family == "flow" and dim < 2:
        raise ValueError(f"family='flow' needs at least 2 unconstrained coordinates; the model has {dim}")
    kwargs = {"rank": min(2, dim)} if config.family == "lowrank" else {}
    guide = FAMILIES[config.family](dim, batch_shape=(1,), init_scale=config.init_scale, **kwargs)
    with torch.no_grad():
        (guide.base if config.family == "flow" else guide).loc.copy_(loc)
    return guide


@contextlib.contextmanager
def seeded(seed: int | None):
    """Draw from torch's generator seeded with ``seed`` inside, leaving the caller's generator as it was;
    ``None``: the caller's generator, unchanged."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def fit(model: Model, **settings) -> Fit:
    """Fit q to the model's posterior by maximising the ELBO in the unconstrained space (ADVI, Kucukelbir et
    al. 2017); ``settings`` are the fields of ``FitConfig`` (keyword only), e.g.
    ``fit(model, family="fullrank", num_samples=8, estimator="stl", max_steps=10_000)``.

    Each step estimates the ELBO with ``num_samples`` draws of q (on a minibatch with ``batch_size``) and takes
    an Adam step on it. Returns a ``Fit``: q, the ELBO trace, and diagnostics from ``num_draws`` draws of q.
    """
    try:
        config = FitConfig(**settings)
    except TypeError as error:
        raise ValueError(f"fit: {error}; the settings are the fields of elbo.bbvi.FitConfig") from None
    if not isinstance(model, Model):
        raise ValueError(f"model must be an elbo.Model, got {type(model).__name__}")
    if config.batch_size is not None and model.log_joint is not None:
        raise ValueError("batch_size needs a model given with log_prior, log_likelihood and data; this one has "
                         "a single log_joint")
    form = "mc" if config.estimator == "stl" else "entropy"  # stl is about the log q term, which "mc" keeps
    with seeded(config.seed):
        start = time.perf_counter()
        guide = _guide(config, model.dim, model.initial_point())
        optimizer = torch.optim.Adam(guide.parameters(), lr=config.lr)
        # Robbins–Monro step sizes: their sum diverges, the sum of their squares does not
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1 / (1 + t / config.lr_decay_steps))
        elbo_trace, converged = [], False
        with tqdm(total=config.max_steps, desc=f"fit {config.family}", disable=not config.progress,
                  leave=False) as bar:
            for step in range(config.max_steps):
                x = model.data_indices(config.batch_size)
                elbo = bounds.elbo(model, guide, x, config.num_samples, form=form, estimator=config.estimator,
                                   validate_args=False)
                elbo_trace.append(elbo.item())
                if not math.isfinite(elbo_trace[-1]):
                    raise ValueError(f"the ELBO estimate is {elbo_trace[-1]} at step {step}: the log density is "
                                     f"NaN or inf at a draw of q; check log_joint and the constraints, or lower lr")
                optimizer.zero_grad()
                loss = -elbo.mean()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update()
                if (step + 1) % config.window == 0:
                    bar.set_postfix(elbo=f"{sum(elbo_trace[-config.window:]) / config.window:.4g}")
                    if has_converged(elbo_trace, config.window, config.rel_tol):
                        converged = True
                        break
        seconds = time.perf_counter() - start
        return Fit(model, guide, config=config, elbo_trace=elbo_trace, converged=converged, seconds=seconds)


# --- results ---------------------------------------------------------------------------------------------------


def _component_names(name: str, shape: tuple) -> list[str]:
    """``mu`` for a scalar, ``theta[0]``, ..., ``L[1,0]``, ... for the entries of a tensor, in row-major order."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, index))}]" for index in itertools.product(*map(range, shape))]


def summarize(draws: dict, *, quantiles=(0.05, 0.5, 0.95)) -> dict:
    """``{component: {"mean", "sd", "5%", "50%", "95%"}}`` over draws ``{name: (n, *shape)}``, one row per scalar
    component of each parameter (``theta[0]``, ...)."""
    rows = {}
    for name, values in draws.items():
        flat = values.detach().reshape(values.shape[0], -1).double()
        stats = {"mean": flat.mean(0), "sd": flat.std(0)}
        stats |= {f"{100 * q:g}%": flat.quantile(q, dim=0) for q in quantiles}
        for i, component in enumerate(_component_names(name, tuple(values.shape[1:]))):
            rows[component] = {key: value[i].item() for key, value in stats.items()}
    return rows


@dataclass(eq=False)
class Fit:
    """q fitted to a model's posterior, with ``num_draws`` draws of q and their diagnostics.

    ``log_weights`` are ``log w_s = log p(x, z_s) - log q(z_s)`` for the draws ``z_s ~ q`` (all data, no
    subsampling); from them:

    - ``elbo``: their mean, the ELBO of the final q (a float);
    - ``log_evidence``: ``log (1/M) Σ_s w_s``, the importance-sampling estimate of ``log p(x)`` (up to whatever
      constants ``log_joint`` leaves out), biased low by about ``var(w) / (2 M E[w]²)``; ``log_evidence_stderr``:
      its standard error by the delta method, ``sd(w) / (√M · mean(w))`` (meaningful only when k̂ < 0.7: with
      heavier tails the variance of w is infinite);
    - ``khat``: the PSIS k̂ (Yao et al. 2018; ArviZ): below 0.7 the draws are usable (``elbo.diagnostics``);
    - ``psis_mean``: posterior means reweighted by the Pareto-smoothed weights.
    """

    model: Model = field(repr=False)
    guide: torch.nn.Module = field(repr=False)
    config: FitConfig = field(default_factory=FitConfig)
    elbo_trace: list = field(default_factory=list, repr=False)
    converged: bool = False
    seconds: float = math.nan
    z: torch.Tensor = field(init=False, repr=False)
    log_weights: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        chunks = [min(1000, self.config.num_draws - start) for start in range(0, self.config.num_draws, 1000)]
        with torch.no_grad():
            # chunks bound the memory of an (M, N) log-likelihood
            log_w, z = zip(*(bounds.log_weights(self.model, self.guide, self.model.data_indices(), size,
                                                validate_args=False) for size in chunks))
        self.log_weights = torch.cat(log_w)[:, 0]  # (M,)
        self.z = torch.cat(z)[:, 0]  # (M, D)

    @property
    def q(self):
        """q over the unconstrained ``z``: batch shape ``(1,)``, event shape ``(D,)``."""
        return self.guide()

    @property
    def num_steps(self) -> int:
        return len(self.elbo_trace)

    @cached_property
    def draws(self) -> dict:
        """The ``num_draws`` draws of q, constrained: ``{name: (M, *shape)}``."""
        return self.model.constrain(self.z)

    def sample(self, n: int) -> dict:
        """``n`` fresh draws of q in the constrained space: ``{name: (n, *param.shape)}``."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        with torch.no_grad():
            return self.model.constrain(self.q.sample((n,))[:, 0])

    @property
    def elbo(self) -> float:
        return self.log_weights.mean().item()

    @property
    def log_evidence(self) -> float:
        return (torch.logsumexp(self.log_weights, 0) - math.log(len(self.log_weights))).item()

    @property
    def log_evidence_stderr(self) -> float:
        w = (self.log_weights - self.log_weights.max()).exp()  # rescaled: the ratio sd/mean does not change
        return (w.std() / (math.sqrt(len(w)) * w.mean())).item()

    @cached_property
    def _psis(self):
        return diagnostics.psis(self.log_weights)

    @property
    def khat(self) -> float:
        """PSIS k̂ of the log-weights; < 0.7: the draws are usable (see ``elbo.diagnostics``)."""
        return self._psis[1]

    @property
    def psis_log_weights(self) -> torch.Tensor:
        """Pareto-smoothed, self-normalized log-weights of the draws, shape ``(M,)``."""
        return self._psis[0]

    @property
    def psis_mean(self) -> dict:
        """``Σ_s w̃_s y_s`` with the smoothed normalized weights w̃: ``{name: tensor of param.shape}``."""
        weights = self.psis_log_weights.exp()
        return {name: torch.tensordot(weights, values, dims=1) for name, values in self.draws.items()}

    def summary(self, *, quantiles=(0.05, 0.5, 0.95)) -> dict:
        """Mean, sd and quantiles of q's draws per scalar component: ``{"theta[0]": {"mean": ..., ...}, ...}``."""
        return summarize(self.draws, quantiles=quantiles)

    def to_arviz(self):
        """The draws as an ArviZ ``InferenceData`` (one chain), with the log-weights in ``sample_stats``."""
        arviz = require("arviz", extra="mcmc", feature="Fit.to_arviz()")
        return arviz.from_dict(posterior={name: values[None].numpy() for name, values in self.draws.items()},
                               sample_stats={"log_weight": self.log_weights[None].numpy()})
