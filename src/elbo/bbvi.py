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
import copy
import itertools
import math
import runpy
import time
import traceback
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch.distributions import Transform, biject_to, constraints
from torch.distributions.constraints import Constraint
from tqdm.auto import tqdm

from . import bam, bounds, estimators, families, pathfinder, psis
from ._checks import check_int_at_least
from ._optional import require
from .errors import InputError
from .fit_config import ESTIMATORS, FAMILIES, INITS, METHODS, FitConfig

__all__ = ["Param", "Model", "FitConfig", "Fit", "fit", "load_model", "summarize", "has_converged", "ordered_vector",
           "OrderedTransform", "FAMILIES", "FAMILY_CLASSES", "ESTIMATORS", "METHODS", "INITS", "NumericalError",
           "seeded"]

# fit_config.FAMILIES's names, in its order, to their classes
FAMILY_CLASSES = dict(zip(FAMILIES, (families.MeanField, families.FullRank, families.LowRank, families.Flow),
                          strict=True))


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
            raise InputError(f"Param shape must be a tuple of positive integers, got {self.shape!r}",
                             argument="shape") from None
        object.__setattr__(self, "shape", shape)
        if not isinstance(self.constraint, Constraint):
            raise InputError(f"Param constraint must be a torch.distributions constraint, got {self.constraint!r}",
                             argument="constraint")
        if len(shape) < self.constraint.event_dim:
            raise InputError(f"constraint {self.constraint} is on {self.constraint.event_dim}-dimensional values; "
                             f"Param shape {shape} has {len(shape)} dimensions")
        try:
            self.transform.inverse_shape(shape)
        except NotImplementedError:
            raise InputError(f"unknown constraint {self.constraint}: torch.distributions.biject_to has no "
                             f"bijection onto it; use real, positive, unit_interval, greater_than, less_than, "
                             f"interval, simplex, corr_cholesky or elbo.ordered_vector") from None
        except ValueError as error:
            raise InputError(f"Param shape {shape} does not fit constraint {self.constraint}: {error}") from None

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
        raise InputError(f"data must be a tensor, or a tuple or dict of tensors, with the data points along "
                         f"dimension 0; got {type(data).__name__}")
    sizes = {t.shape[0] for t in tensors}
    if len(sizes) != 1 or 0 in sizes:
        raise InputError(f"data tensors must have the same number N >= 1 of data points along dimension 0, "
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
            raise InputError(f"params must be a non-empty dict of name -> elbo.Param, got {params!r}",
                             argument="params")
        for name, param in params.items():
            if not isinstance(name, str) or not isinstance(param, Param):
                raise InputError(f"params must map names (str) to elbo.Param, got {name!r}: {param!r}",
                                 argument="params")
        if log_joint is not None and (log_prior, log_likelihood, data) != (None, None, None):
            raise InputError("give either log_joint, or log_prior, log_likelihood and data; not both")
        if log_joint is None and (log_prior is None or log_likelihood is None or data is None):
            raise InputError("give log_joint(p), or all of log_prior(p), log_likelihood(p, batch) and data")
        for name, fn in (("log_joint", log_joint), ("log_prior", log_prior), ("log_likelihood", log_likelihood)):
            if fn is not None and not callable(fn):
                raise InputError(f"{name} must be callable, got {type(fn).__name__}", argument=name)
        if not isinstance(vectorize, bool):
            raise InputError(f"vectorize must be True or False, got {vectorize!r}", argument="vectorize")
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
            raise InputError(f"z must have shape (S, D) = (S, {self.dim}), got {tuple(z.shape)}")
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
                raise InputError("this model has no data to subsample: it was given as a single log_joint")
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
            raise InputError(f"{name} returned {got}, expected shape {expected}: {hint}")
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
            raise InputError(f"an elbo.Model has one global posterior: expected x of shape (1, B) (from "
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
            raise InputError(f"the log density is NaN or inf at every one of the {num_tries} initial points tried "
                             f"(0 and uniform draws in [-2, 2]^{self.dim} in the unconstrained space; values "
                             f"{shown}, ...): check log_joint and the parameters' constraints")
        return candidates[finite[0, 0]]


def load_model(path) -> Model:
    """Run the Python file at ``path`` and return the ``elbo.Model`` it defines as ``model``.

    An error while running the file (a syntax error, a null byte, a failing import, an exception at its top level)
    is an ``InputError`` of one line naming the file's own line: ``model.py:7: NameError: name 'x' is not defined``,
    chained to the original error."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"model file {path} is a directory, expected a Python file")
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    try:
        namespace = runpy.run_path(str(path), run_name="__elbo_model__")  # not "__main__": skip the file's own script
    except SyntaxError as error:  # also null bytes, a bad encoding, bad indentation; in the file or one it imports
        lineno = error.lineno or _null_byte_line(path)
        where = f"{error.filename or path}" + (f":{lineno}" if lineno else "")
        raise InputError(f"{where}: {type(error).__name__}: {' '.join(str(error.msg).split())}") from error
    except (Exception, SystemExit) as error:
        message = _error_in_file(error, path)
        if message is None and isinstance(error, OSError):
            raise  # reading the file itself
        raise InputError(message or f"{path}: {_one_line(error)}") from error
    if "model" not in namespace:
        raise InputError(f"{path} does not define `model` (an elbo.Model)")
    if not isinstance(namespace["model"], Model):
        raise InputError(f"`model` in {path} is a {type(namespace['model']).__name__}, expected an elbo.Model")
    return namespace["model"]


def _error_in_file(error: BaseException, path) -> str | None:
    """``path:line: ExcType: message`` in one line, at the deepest frame of ``error``'s traceback that runs the
    file at ``path`` (the user's model file); None when no frame does (the error is not the file's)."""
    target, same, line = Path(path).resolve(), {}, None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        name = frame.f_code.co_filename
        if name not in same:
            try:
                same[name] = Path(name).resolve() == target
            except (OSError, ValueError, RuntimeError):
                same[name] = False
        if same[name]:
            line = lineno
    return None if line is None else f"{path}:{line}: {_one_line(error)}"


def _null_byte_line(path: Path) -> int | None:
    """The line of the file's first null byte (Python's SyntaxError for one gives none), None when it has none."""
    try:
        content = path.read_bytes()
    except OSError:
        return None
    return content.count(b"\n", 0, content.index(b"\0")) + 1 if b"\0" in content else None


def _one_line(error: BaseException) -> str:
    """``ExcType: message`` on one line (the library's ``InputError``: its message alone)."""
    try:
        text = " ".join(str(error).split())
    except Exception:  # a __str__ that fails
        text = "(its message cannot be printed)"
    if isinstance(error, InputError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --- fitting ---------------------------------------------------------------------------------------------------

def has_converged(elbo_trace, window: int, *, num_se: float = 2.0) -> bool:
    """True when, at each of the last two checks (``window`` steps apart), the mean ELBO estimate of the last
    ``window`` steps was not above that of the window before by ``num_se`` standard errors of the difference.

    The standard error comes from the spread of the estimates within each window, so the rule is scale-free: a
    model with ELBO ≈ -1 and one with ELBO ≈ -1e4 stop when their progress drowns in their own Monte Carlo noise,
    where a relative change (Stan's ADVI rule) never fires on the first and fires early on the second."""
    def improving(trace):
        if len(trace) < 2 * window:
            return True
        before = torch.tensor(trace[-2 * window:-window], dtype=torch.float64)
        last = torch.tensor(trace[-window:], dtype=torch.float64)
        stderr = math.sqrt((before.var() + last.var()).item() / window)
        return (last.mean() - before.mean()).item() > num_se * stderr

    return len(elbo_trace) >= 3 * window and not improving(elbo_trace) and not improving(elbo_trace[:-window])


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


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype | None):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or previous)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class _Counted:
    """The model's unconstrained log density, counting the draws it is evaluated at, with and without gradients."""

    def __init__(self, model: Model):
        self.model, self.num_grad, self.num_density = model, 0, 0

    def __call__(self, z: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_grad_enabled() and z.requires_grad:
            self.num_grad += z.shape[0]
        else:
            self.num_density += z.shape[0]
        return self.model.log_density(z, indices)


def _initial_point(model: Model, init) -> torch.Tensor:
    z = model.initial_point()
    if isinstance(init, dict):
        unknown = set(init) - set(model.params)
        if unknown:
            raise InputError(f"init names unknown parameters {sorted(unknown)}; the model's are {list(model.params)}",
                             argument="init")
        values = model.constrain(z[None])
        for name, value in init.items():
            value = torch.as_tensor(value, dtype=z.dtype)
            param = model.params[name]
            if tuple(value.shape) != param.shape or not bool(param.constraint.check(value).all()):
                raise InputError(f"init[{name!r}] must have shape {param.shape} and satisfy {param.constraint}, "
                                 f"got {value.tolist()}")
            values[name] = value[None]
        z = model.unconstrain(values)[0]
        if not math.isfinite(model.log_density(z[None]).item()):
            raise InputError("the log density is not finite at init: check the values and the model")
    return z


def _start(model: Model, config: FitConfig, log_density: _Counted) -> tuple[torch.Tensor, torch.Tensor, str]:
    """q's starting mean and Cholesky factor, and a line saying where they came from."""
    z0 = _initial_point(model, config.init)
    eye = torch.eye(model.dim, dtype=z0.dtype)
    if config.init == "pathfinder" or config.method == "pathfinder":
        result = pathfinder.pathfinder(log_density, z0)  # the counter counts its gradients and its ELBO draws
        return result.loc, result.scale_tril, (f"Pathfinder: best of {len(result.path.z)} L-BFGS iterates, "
                                               f"ELBO {result.elbo:.4g}; {result.path.reason}")
    if config.init == "map":
        path = pathfinder.lbfgs(log_density, z0)
        return path.z[-1], config.init_scale * eye, f"the mode by L-BFGS: {path.reason}"
    return z0, config.init_scale * eye, "the initial point"


def _guide(config: FitConfig, dim: int, loc: torch.Tensor, scale_tril: torch.Tensor, *, min_scale: float = 0.0):
    """q of ``config.family`` at ``N(loc, scale_tril scale_trilᵀ)`` (its diagonal only, but for full rank);
    ``min_scale`` floors a full-rank factor's diagonal."""
    if config.family == "flow" and dim < 2:
        raise InputError(f"family='flow' needs at least 2 unconstrained coordinates; the model has {dim}")
    kwargs = {"rank": min(2, dim)} if config.family == "lowrank" else {}
    if config.family == "fullrank":
        kwargs["min_scale"] = min_scale
        scale_tril = scale_tril.tril(-1) + torch.diag_embed(torch.diagonal(scale_tril).clamp_min(2 * min_scale))
    guide = FAMILY_CLASSES[config.family](dim, batch_shape=(1,), init_scale=config.init_scale, **kwargs)
    diag = torch.diagonal(scale_tril) if config.family == "fullrank" else (scale_tril ** 2).sum(1).sqrt()
    with torch.no_grad():
        if config.family == "fullrank":
            guide.loc.copy_(loc)
            guide.log_diag.copy_((diag - min_scale).log())
            guide.off_diag.copy_(scale_tril.tril(-1))
        elif config.family == "lowrank":
            guide.loc.copy_(loc)
            guide.log_diag.copy_(2 * diag.log())
        else:
            base = guide.base if config.family == "flow" else guide
            base.loc.copy_(loc)
            base.log_scale.copy_(diag.log())
    return guide


class NumericalError(FloatingPointError):
    """q's estimate broke down in floating point (a nearly singular Cholesky factor, an ELBO of round-off)."""


def _check_gaussian(guide, step: int, num_draws: int = 64) -> None:
    """For a Gaussian q, ``-log q`` at q's own draws must be what it is in exact arithmetic: ``m² = 2 (-log q -
    H[q]) + D`` is the squared Mahalanobis norm of the draw, χ²_D, whose mean over ``num_draws`` draws is D within
    5 of its known standard errors ``√(2D / num_draws)`` (false alarm about 6e-7 a check). Where the Cholesky
    factor is nearly singular, ``log q`` of q's own draws is round-off and the ELBO estimate runs away (issue 11's
    stochastic volatility model: -log q about 1e70)."""
    with torch.no_grad():
        q = guide()
        if not hasattr(q, "entropy") or isinstance(q, torch.distributions.TransformedDistribution):
            return
        dim = q.event_shape[0]
        squared_norm = 2 * (-q.log_prob(q.sample((num_draws,)))[:, 0] - q.entropy()[0]) + dim  # (num_draws,)
        if not bool(torch.isfinite(squared_norm).all()) or \
                abs(squared_norm.mean().item() - dim) > 5 * math.sqrt(2 * dim / num_draws) + 1e-6 * dim:
            scale = q.scale_tril[0] if hasattr(q, "scale_tril") else None
            detail = "" if scale is None else \
                f"; condition number of its Cholesky factor {torch.linalg.cond(scale):.3g}"
            raise NumericalError(f"q's Gaussian broke down at step {step}: the Mahalanobis norm² of its own draws "
                                 f"averages {squared_norm.mean().item():.4g}, not D = {dim} (log q is round-off)"
                                 f"{detail}")


def _elbo_step(model_density, guide, config: FitConfig, x: torch.Tensor, num_samples: int):
    """The ELBO estimate of one ADVI step, its surrogate's gradient by the estimator, and the number of draws at
    which ``log p`` was NaN or -inf (left out of the estimate, as Stan does)."""
    q = guide()
    if config.estimator == "score":
        return bounds.elbo(model_density, guide, x, num_samples, form="entropy", estimator="score",
                           validate_args=False), 0
    z = q.rsample((num_samples,))  # (K, 1, D)
    log_p = model_density.log_prob(x, z)[:, 0]
    # STL: q's parameters cut from log q, leaving only the pathwise term (Roeder et al. 2017)
    log_q = (estimators.stop_gradient(q) if config.estimator == "stl" else q).log_prob(z)[:, 0]
    finite = torch.isfinite(log_p)
    if not bool(finite.any()):
        return None, num_samples
    log_w = torch.where(finite, log_p - log_q, torch.zeros_like(log_p))
    return (log_w.sum() / finite.sum()).unsqueeze(0), int((~finite).sum())


def fit(model: Model, **settings) -> Fit:
    """Fit q to the model's posterior in the unconstrained space; ``settings`` are the fields of ``FitConfig``
    (keyword only), e.g. ``fit(model)`` (Pathfinder, then batch and match, full rank) or ``fit(model,
    family="meanfield", method="advi")``.

    Returns a ``Fit``: q, the trace of ELBO estimates, why it stopped, the numbers of log-density evaluations, and
    the diagnostics (k̂, log evidence, PSIS-reweighted summaries) from ``num_draws`` draws of q. Warns when it did
    not converge, when k̂ ≥ 0.7, and when log p was not finite at more than 1% of the draws."""
    try:
        config = FitConfig(**settings)
    except TypeError as error:
        raise InputError(f"fit: {error}; the settings are the fields of elbo.bbvi.FitConfig") from None
    if not isinstance(model, Model):
        raise InputError(f"model must be an elbo.Model, got {type(model).__name__}", argument="model")
    if config.batch_size is not None and model.log_joint is not None:
        raise InputError("batch_size needs a model given with log_prior, log_likelihood and data; this one has "
                         "a single log_joint", argument="batch_size")
    with seeded(config.seed), _default_dtype(config.dtype):
        start = time.perf_counter()
        log_density = _Counted(model)
        loc, scale_tril, started = _start(model, config, log_density)
        run = {"bam": _fit_bam, "advi": _fit_advi, "pathfinder": _fit_pathfinder}[config.method]
        guide, elbo_trace, converged, reason, num_dropped = run(model, config, log_density, loc, scale_tril)
        seconds = time.perf_counter() - start
        result = Fit(model, guide, config=config, elbo_trace=elbo_trace, converged=converged, seconds=seconds,
                     reason=f"{reason} (started from {started})", num_grad_evals=log_density.num_grad,
                     num_dropped=num_dropped)
    result.warn()
    return result


def _fit_pathfinder(model, config, log_density, loc, scale_tril):
    return _guide(config, model.dim, loc, scale_tril), [], True, "Pathfinder's best Gaussian", 0


def _fit_bam(model, config, log_density, loc, scale_tril):
    """Batch and match from (loc, scale_tril): ``bam.bam_step`` with ``λ_t = B D / (t + 1)`` (Cai et al. 2024's
    schedule); a step that breaks (a covariance that is not positive definite, or not finite) is taken again from
    the state before it with λ halved from then on, until λ has been halved 10 times; q is the average of the last
    window's iterates."""
    dim, window = model.dim, config.steps_per_window()
    num_samples = config.num_samples or 2 * dim + 2
    cov = scale_tril @ scale_tril.T
    trace, iterates, num_dropped, converged, reason, shrink = [], [], 0, False, f"reached max_steps = " \
        f"{config.max_steps}", 1.0
    with tqdm(total=config.max_steps, desc="fit fullrank (BaM)", disable=not config.progress, leave=False) as bar:
        for step in range(config.max_steps):
            q = torch.distributions.MultivariateNormal(loc, covariance_matrix=cov, validate_args=False)
            z = q.sample((num_samples,))
            log_p, grad = pathfinder.value_and_grad(log_density, z)
            finite = torch.isfinite(log_p) & torch.isfinite(grad).all(1)
            num_dropped += int((~finite).sum())
            if not bool(finite.any()):
                raise InputError(f"the log density is NaN or inf at all {num_samples} draws of q at step {step}: "
                                 f"check log_joint and the constraints")
            trace.append((log_p[finite] - q.log_prob(z[finite])).mean().item())
            previous = (loc, cov)
            try:
                loc, cov = bam.bam_step(loc, cov, z[finite], grad[finite], shrink * num_samples * dim / (step + 1))
                if not bool(torch.isfinite(loc).all() and torch.isfinite(cov).all()):
                    raise torch.linalg.LinAlgError("the step gave a mean or covariance that is not finite")
                torch.linalg.cholesky(cov)  # the next step's draws need it
            except torch.linalg.LinAlgError as error:
                if shrink < 1e-3:
                    raise NumericalError(f"batch and match broke down at step {step}: {error}") from None
                shrink /= 2
                loc, cov = previous
                continue
            iterates = (iterates + [(loc, cov)])[-window:]
            bar.update()
            if (step + 1) % window == 0:
                bar.set_postfix(elbo=f"{sum(trace[-window:]) / window:.4g}")
                if has_converged(trace, window):
                    converged, reason = True, f"converged at step {step + 1}: the ELBO estimate stopped improving"
                    break
    iterates = iterates or [(loc, cov)]  # max_steps reached before any step succeeded
    loc = torch.stack([it[0] for it in iterates]).mean(0)
    cov = torch.stack([it[1] for it in iterates]).mean(0)
    return _guide(config, dim, loc, torch.linalg.cholesky(cov)), trace, converged, reason, num_dropped


def _fit_advi(model, config, log_density, loc, scale_tril):
    """Adam on the ELBO with Robbins–Monro step sizes, in coordinates whitened by the starting Gaussian
    (``_Whitened``); every window, q's Gaussian is checked (``_check_gaussian``) and saved; a broken step or an ELBO
    far above every value seen restarts from the last saved state with half the learning rate, three times at
    most. q is the average of its parameters over the last window."""
    window = config.steps_per_window()
    num_samples = config.num_samples or 8
    whitened, guide = _whitened_guide(model, config, log_density, loc, scale_tril)
    counted = _CountedModel(model, whitened)
    adam = _RestartableAdam(guide, config)
    trace, average, num_dropped, restarts = [], None, 0, 0
    converged, reason = False, f"reached max_steps = {config.max_steps}"
    with tqdm(total=config.max_steps, desc=f"fit {config.family}", disable=not config.progress, leave=False) as bar:
        step = 0
        while step < config.max_steps:
            x = model.data_indices(config.batch_size)
            elbo, dropped = _elbo_step(counted, guide, config, x, num_samples)
            num_dropped += dropped
            broken, message = _broken_step(elbo, trace, window, guide, step)
            if broken:
                restarts += 1
                _check_restart(elbo, message, restarts, step, num_samples)
                step = adam.restore_with_half_lr()
                trace = trace[:step]
                continue
            trace.append(elbo.item())
            adam.ascend(elbo)
            step += 1
            bar.update()
            average = _running_average(average, guide, step, window)
            if step % window == 0:
                adam.save(step)
                bar.set_postfix(elbo=f"{sum(trace[-window:]) / window:.4g}")
                if has_converged(trace, window):
                    converged, reason = True, f"converged at step {step}: the ELBO estimate stopped improving"
                    break
    if average is not None:
        with torch.no_grad():
            for p, a in zip(guide.parameters(), average):
                p.copy_(a)
    return whitened.unwhiten(guide, config.family), trace, converged, reason, num_dropped


def _whitened_guide(model, config, log_density, loc, scale_tril):
    """ADVI's coordinates ``u`` (``_Whitened``) and q in them, at the starting Gaussian mapped into them."""
    # a full-rank q is whitened by the whole Cholesky factor (the product of two is one), the others by its sds
    whiten = scale_tril if config.family == "fullrank" else torch.diag((scale_tril ** 2).sum(1).sqrt())
    whitened = _Whitened(log_density, loc, whiten)
    guide = _guide(config, model.dim, torch.zeros_like(loc), torch.linalg.solve_triangular(
        whiten, scale_tril, upper=False), min_scale=MIN_SCALE)
    return whitened, guide


class _RestartableAdam:
    """ADVI's Adam with Robbins–Monro step sizes, and the state (q's and Adam's) saved to restart from."""

    def __init__(self, guide, config: FitConfig):
        self.guide = guide
        self.optimizer = torch.optim.Adam(guide.parameters(), lr=config.lr)
        # Robbins–Monro step sizes: their sum diverges, the sum of their squares does not
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                          lambda t: 1 / (1 + t / config.lr_decay_steps))
        self.save(0)

    def save(self, step: int) -> None:
        self.saved = (copy.deepcopy(self.guide.state_dict()), copy.deepcopy(self.optimizer.state_dict()), step)

    def ascend(self, elbo: torch.Tensor) -> None:
        """One step up the ELBO estimate (down its negative), and the schedule's step."""
        self.optimizer.zero_grad()
        (-elbo.mean()).backward()
        self.optimizer.step()
        self.schedule.step()

    def restore_with_half_lr(self) -> int:
        """Back to the saved state with half the learning rate from its first step on; returns the saved step."""
        guide_state, optimizer_state, step = self.saved
        self.guide.load_state_dict(guide_state)
        self.optimizer.load_state_dict(optimizer_state)  # which also brings back the learning rate it had then
        self.schedule.base_lrs = [lr / 2 for lr in self.schedule.base_lrs]
        for group in self.optimizer.param_groups:
            group["lr"] /= 2
        return step


def _broken_step(elbo, trace: list, window: int, guide, step: int) -> tuple[bool, str | None]:
    """Whether ADVI's step broke, and the message of the check that found it (``None``: the estimate itself). An
    estimate that is missing (no finite draw), not finite, or far above every one seen is broken: that is round-off,
    not progress (more than |best| + 10 nats above the best, and 10 times the last window's spread); at the end of
    a window, q's Gaussian is checked too (``_check_gaussian``)."""
    if elbo is None or not math.isfinite(elbo.item()):
        return True, None
    if trace and elbo.item() > max(trace) + abs(max(trace)) + 10 * (max(trace[-window:]) - min(trace[-window:])) + 10:
        return True, None
    if (step + 1) % window == 0:
        try:
            _check_gaussian(guide, step)
        except NumericalError as error:
            return True, str(error)
    return False, None


def _check_restart(elbo, message: str | None, restarts: int, step: int, num_samples: int) -> None:
    """Raise where a broken ADVI step cannot be taken again: no finite draw at all, or a fourth restart."""
    if elbo is None:
        raise InputError(f"the log density is NaN or inf at all {num_samples} draws of q at step "
                         f"{step}: check log_joint and the constraints, or lower lr")
    if restarts > 3:
        raise NumericalError(message or (
            f"the ELBO estimate broke down at step {step} ({elbo.item():.4g}) after 3 restarts with "
            f"smaller steps: check the model's scales, or use method='bam'"))


def _running_average(average, guide, step: int, window: int):
    """q's parameters averaged over the steps of this window so far (iterate averaging), after ``step`` steps."""
    params = [p.detach().clone() for p in guide.parameters()]
    return params if step % window == 1 or window == 1 else [
        a + (p - a) / ((step - 1) % window + 1) for a, p in zip(average, params)]


MIN_SCALE = 1e-6  # the floor of a full-rank factor's diagonal in ADVI's whitened coordinates


class _Whitened:
    """The log density of ``u`` with ``z = loc + L u``: ``log p(loc + L u) + log |det L|``, for lower-triangular L.

    ADVI runs in these coordinates, with the starting Gaussian's mean and Cholesky factor (Pathfinder's; for the
    families other than full rank, only its sds): Adam moves every parameter by about its learning rate at first,
    whatever its gradient's size, so in z's own units a step of 0.1 is nothing for a parameter whose posterior sd
    is 100 and a catastrophe for one whose sd is 0.001 (diamonds: the first step from Pathfinder's q gave an ELBO
    of 1e36), and a correlated posterior is a ridge that stochastic gradients crawl along. The map keeps each
    family's form (a product of lower-triangular factors is one), so q is mapped back exactly (``unwhiten``)."""

    def __init__(self, log_density, loc: torch.Tensor, scale_tril: torch.Tensor):
        self.log_density, self.loc, self.scale_tril = log_density, loc, scale_tril
        self.log_det = torch.diagonal(scale_tril).log().sum()

    def __call__(self, u: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        return self.log_density(self.loc + u @ self.scale_tril.T, indices) + self.log_det

    def unwhiten(self, guide, family: str):
        """The same q as a distribution over ``z``, in the same family."""
        loc, tril = self.loc, self.scale_tril
        scale = torch.diagonal(tril)  # for the families other than full rank, tril is diagonal
        with torch.no_grad():
            if family == "flow":
                return _Shifted(guide, loc, scale)
            guide.loc.copy_(loc + guide.loc @ tril.T)
            if family == "meanfield":
                guide.log_scale.add_(scale.log())
            elif family == "fullrank":
                product = tril @ guide.scale_tril[0]
                guide.min_scale = 0.0  # the floor is in u's units; in z's, the factor is the product
                guide.log_diag.copy_(torch.diagonal(product).log()[None])
                guide.off_diag.copy_(product.tril(-1)[None])
            else:  # lowrank: N(loc, F Fᵀ + diag(exp(log_diag)))
                guide.cov_factor.mul_(scale[:, None])
                guide.log_diag.add_(2 * scale.log())
        return guide


class _Shifted(torch.nn.Module):
    """A flow over ``u`` as a distribution over ``z = loc + scale ⊙ u``."""

    def __init__(self, guide, loc: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.guide = guide
        self.register_buffer("loc", loc)
        self.register_buffer("scale", scale)

    def forward(self, x=None):
        return torch.distributions.TransformedDistribution(
            self.guide(), [torch.distributions.AffineTransform(self.loc, self.scale, event_dim=1)])


class _CountedModel:
    """``model`` as ``elbo.bounds`` sees it (``log_prob(x, z)``), through the counting log density."""

    def __init__(self, model: Model, log_density: _Counted):
        self.model, self.log_density = model, log_density

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        indices = None if self.model.log_joint is not None else x[0]
        return self.log_density(z[:, 0], indices).unsqueeze(1)


# --- results ---------------------------------------------------------------------------------------------------


def _component_names(name: str, shape: tuple) -> list[str]:
    """``mu`` for a scalar, ``theta[0]``, ..., ``L[1,0]``, ... for the entries of a tensor, in row-major order."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, index))}]" for index in itertools.product(*map(range, shape))]


def summarize(draws: dict, *, quantiles=(0.05, 0.5, 0.95), weights: torch.Tensor | None = None) -> dict:
    """``{component: {"mean", "sd", "5%", "50%", "95%"}}`` over draws ``{name: (n, *shape)}``, one row per scalar
    component of each parameter (``theta[0]``, ...). With normalized ``weights`` of shape ``(n,)`` (PSIS's), the
    weighted mean ``ȳ = Σ w y`` and sd ``(Σ w (y - ȳ)²)^½`` only."""
    rows = {}
    for name, values in draws.items():
        flat = values.detach().reshape(values.shape[0], -1).double()
        if weights is None:
            stats = {"mean": flat.mean(0), "sd": flat.std(0)}
            stats |= {f"{100 * q:g}%": flat.quantile(q, dim=0) for q in quantiles}
        else:
            w = weights.detach().double()
            mean = w @ flat
            stats = {"mean": mean, "sd": (w @ (flat - mean) ** 2).sqrt()}
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
    - ``khat``: the PSIS k̂ (Yao et al. 2018; ``elbo.psis.psis``): below 0.7 the PSIS-reweighted estimates
      (``psis_mean``, ``psis_sd``, the ``psis_*`` columns of ``summary()``) are usable and are the ones to report;
      at 0.7 or above nothing computed from q's draws is;
    - ``reason``: one line saying why the fit stopped and where it started; ``num_grad_evals``: the log-density
      gradients it took (one per draw); ``num_dropped``: draws at which ``log p`` was NaN or -inf, left out of the
      ELBO estimates; ``seconds``: its wall time, diagnostics excluded.
    Draws at which ``log p`` is not finite get weight 0 (``log w = -inf``); ``num_nonfinite_draws`` counts them.
    """

    model: Model = field(repr=False)
    guide: torch.nn.Module = field(repr=False)
    config: FitConfig = field(default_factory=FitConfig)
    elbo_trace: list = field(default_factory=list, repr=False)
    converged: bool = False
    seconds: float = math.nan
    reason: str = ""
    num_grad_evals: int = 0
    num_dropped: int = 0
    z: torch.Tensor = field(init=False, repr=False)
    log_weights: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        chunks = [min(1000, self.config.num_draws - start) for start in range(0, self.config.num_draws, 1000)]
        # in q's dtype: the model's own tensors (its data) are in it, and float64 draws would meet float32 data in
        # operations that do not promote (a matrix product)
        with torch.no_grad(), _default_dtype(self.config.dtype):
            # chunks bound the memory of an (M, N) log-likelihood
            log_w, z = zip(*(bounds.log_weights(self.model, self.guide, self.model.data_indices(), size,
                                                validate_args=False) for size in chunks))
        log_w = torch.cat(log_w)[:, 0]  # (M,)
        self.log_weights = torch.where(torch.isnan(log_w), -math.inf, log_w)
        self.z = torch.cat(z)[:, 0]  # (M, D)

    def warn(self) -> None:
        """The warnings ``fit`` gives: not converged, k̂ ≥ 0.7, log p not finite at more than 1% of the draws."""
        if not self.converged and self.config.method != "pathfinder":
            warnings.warn(f"elbo.fit did not converge: {self.reason}; raise max_steps, or check k̂ "
                          f"({self.khat:.2f}) before using q", stacklevel=3)
        if not self.khat < psis.KHAT_THRESHOLD:
            warnings.warn(psis.khat_meaning(self.khat), stacklevel=3)
        num_nonfinite = self.num_nonfinite_draws
        if num_nonfinite > 0.01 * len(self.log_weights):
            warnings.warn(f"log p is NaN or -inf at {num_nonfinite} of {len(self.log_weights)} draws of q: q puts "
                          f"mass where the model has none", stacklevel=3)

    @property
    def num_nonfinite_draws(self) -> int:
        return int((~torch.isfinite(self.log_weights)).sum())

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
        check_int_at_least("n", n, 1)
        with torch.no_grad():
            return self.model.constrain(self.q.sample((n,))[:, 0])

    @property
    def _finite_log_weights(self) -> torch.Tensor:
        return self.log_weights[torch.isfinite(self.log_weights)]

    @property
    def elbo(self) -> float:
        return self._finite_log_weights.mean().item() if self.num_nonfinite_draws == 0 else -math.inf

    @property
    def log_evidence(self) -> float:
        return (torch.logsumexp(self.log_weights, 0) - math.log(len(self.log_weights))).item()

    @property
    def log_evidence_stderr(self) -> float:
        w = (self.log_weights - self.log_weights.max()).exp()  # rescaled: the ratio sd/mean does not change
        return (w.std() / (math.sqrt(len(w)) * w.mean())).item()

    @cached_property
    def _psis(self):
        finite = torch.isfinite(self.log_weights)
        smoothed, khat = psis.psis(self.log_weights[finite])
        log_w = torch.full_like(self.log_weights, -math.inf)
        log_w[finite] = smoothed
        return log_w, khat

    @property
    def khat(self) -> float:
        """PSIS k̂ of the log-weights: < 0.7, the PSIS-reweighted estimates are usable (``elbo.psis``)."""
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

    @property
    def psis_sd(self) -> dict:
        """``(Σ_s w̃_s (y_s - ȳ)²)^½`` about the PSIS mean ȳ: ``{name: tensor of param.shape}``."""
        weights, means = self.psis_log_weights.exp(), self.psis_mean
        return {name: torch.tensordot(weights, (values - means[name]) ** 2, dims=1).sqrt()
                for name, values in self.draws.items()}

    def summary(self, *, quantiles=(0.05, 0.5, 0.95)) -> dict:
        """Per scalar component, q's own mean, sd and quantiles, and the PSIS-reweighted ``psis_mean`` and
        ``psis_sd`` (the estimates to report when k̂ < 0.7): ``{"theta[0]": {"mean": ..., "psis_mean": ...}}``."""
        rows = summarize(self.draws, quantiles=quantiles)
        reweighted = summarize(self.draws, weights=self.psis_log_weights.exp())
        return {component: row | {"psis_mean": reweighted[component]["mean"], "psis_sd": reweighted[component]["sd"]}
                for component, row in rows.items()}

    def diagnostics(self) -> dict:
        """The numbers that say whether to trust q: k̂ and its meaning, convergence and why it stopped, the ELBO,
        the log evidence and its standard error, evaluations, wall time, dropped and non-finite draws."""
        return {"khat": self.khat, "khat_meaning": psis.khat_meaning(self.khat), "converged": self.converged,
                "reason": self.reason, "method": self.config.method, "family": self.config.family,
                "elbo": self.elbo, "log_evidence": self.log_evidence, "log_evidence_stderr": self.log_evidence_stderr,
                "num_steps": self.num_steps, "num_grad_evals": self.num_grad_evals, "seconds": self.seconds,
                "num_dropped": self.num_dropped, "num_nonfinite_draws": self.num_nonfinite_draws}

    def to_arviz(self):
        """The draws as an ArviZ ``InferenceData`` (one chain), with the log-weights and the PSIS log-weights in
        ``sample_stats`` and ``diagnostics()`` in its ``attrs``."""
        arviz = require("arviz", extra="mcmc", feature="Fit.to_arviz()")
        attrs = {key: (value if isinstance(value, (int, float, str)) else str(value))
                 for key, value in self.diagnostics().items()}
        attrs = {key: int(value) if isinstance(value, bool) else value for key, value in attrs.items()}
        return arviz.from_dict(posterior={name: values[None].numpy() for name, values in self.draws.items()},
                               sample_stats={"log_weight": self.log_weights[None].numpy(),
                                             "psis_log_weight": self.psis_log_weights[None].numpy()},
                               attrs=attrs)
