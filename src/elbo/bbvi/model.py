"""The model language of black-box VI: named, constrained parameters (``Param``) and a log joint density
(``Model``), and the unconstrained space VI happens in.

A model is parameters ``y = {name: y_name}``, each with a shape and a constraint, and ``log p(x, y)``. VI happens
in the unconstrained space (ADVI, Kucukelbir et al. 2017): each parameter is ``y = T(u)`` with the bijection
``T = torch.distributions.biject_to(constraint)``, and the density of ``u`` carries the Jacobian,

    log p(x, u) = log p(x, T(u)) + log |det ∂T(u)/∂u|.

All unconstrained coordinates, flattened and concatenated, form ``z`` of shape ``(D,)``; sizes differ from the
constrained shapes (a simplex of n entries has n - 1 free coordinates, a Cholesky factor of an n × n
correlation matrix n(n-1)/2).

The model meets ``elbo.bounds`` as a model with one global posterior: ``model.log_prob(x, z)`` takes
``z: (K, 1, D)`` and ``x: (1, B)``, the indices of the ``B`` data points the log-likelihood is summed over
(``model.data_indices()``; empty for a model given as a single ``log_joint``), and returns ``(K, 1)``. With
``B < N`` the log-likelihood is that of a minibatch scaled by ``N / B``, an unbiased estimate of the full one
(Hoffman et al. 2013). ``form="analytic"`` is refused by ``elbo.bounds``: such a model has no ``prior()``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch.distributions import Transform, biject_to, constraints
from torch.distributions.constraints import Constraint

from .. import distributed
from ..errors import InputError
from .rows import Rows

__all__ = ["Param", "Model", "memmap"]


def memmap(path) -> torch.Tensor:
    """The array of a ``.npy`` file as a read-only tensor mapped from the disk, for ``Model(data=...)``: the model
    reads its rows chunk by chunk, so a data set larger than memory is read from the disk once a pass, through the
    page cache. Write nothing to it (torch's warning about a non-writable array says the same, and is silenced)."""
    import warnings

    import numpy as np

    array = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


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
    if isinstance(data, (torch.Tensor, Rows)):
        return data[indices]
    if isinstance(data, dict):
        return {key: value[indices] for key, value in data.items()}
    return tuple(value[indices] for value in data)


def _length(rows) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def _first_tensor(data) -> torch.Tensor:
    if isinstance(data, (torch.Tensor, Rows)):
        return data
    return next(iter(data.values() if isinstance(data, dict) else data))


def _tensors(data) -> list:
    """The arrays of ``data`` (a tensor or ``Rows``, or a tuple, list or dict of them), in a list; none for
    anything else."""
    if isinstance(data, dict):
        return list(data.values())
    return [data] if isinstance(data, (torch.Tensor, Rows)) else list(data) if isinstance(data, (tuple, list)) else []


def _num_data(data) -> int:
    tensors = _tensors(data)
    if not isinstance(data, (torch.Tensor, Rows, tuple, list, dict)) or not tensors or not all(
            isinstance(t, (torch.Tensor, Rows)) and t.dim() >= 1 for t in tensors):
        raise InputError(f"data must be a tensor (or rows on the disk, read_rows), or a tuple or dict of them, with "
                         f"the data points along dimension 0; got {type(data).__name__}")
    sizes = {t.shape[0] for t in tensors}
    if len(sizes) != 1 or 0 in sizes:
        raise InputError(f"data tensors must have the same number N >= 1 of data points along dimension 0, "
                         f"got shapes {[tuple(t.shape) for t in tensors]}")
    return sizes.pop()


WITH_REPLACEMENT = 2**20  # above this many rows, minibatches are drawn with replacement


def _disk_row_bytes(data) -> int:
    """The bytes of one row of ``data`` where some of it is rows on the disk (``Rows``), else 0."""
    tensors = _tensors(data)
    if not any(isinstance(t, Rows) for t in tensors):
        return 0
    return sum(t.row_bytes if isinstance(t, Rows) else t[:1].numel() * t.element_size() for t in tensors)


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
        self._row_bytes = _disk_row_bytes(data)
        self.vectorize = vectorize
        self._transforms = {name: param.transform for name, param in params.items()}
        self._unconstrained_shapes = {name: param.unconstrained_shape for name, param in params.items()}
        self._sizes = [math.prod(shape) for shape in self._unconstrained_shapes.values()]  # z's blocks, in order
        self.dim = sum(self._sizes)

    def __repr__(self):
        params = ", ".join(f"{name}: {param.shape} {param.constraint}" for name, param in self.params.items())
        return f"Model({params}; D = {self.dim} unconstrained, N = {self.num_data} data points)"

    # --- the unconstrained space ---------------------------------------------------------------------------

    def _split(self, z: torch.Tensor) -> dict:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise InputError(f"z must have shape (S, D) = (S, {self.dim}), got {tuple(z.shape)}")
        return {name: u.reshape(z.shape[0], *self._unconstrained_shapes[name])
                for name, u in zip(self.params, z.split(self._sizes, dim=1))}

    def _constrain(self, z: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """``p = {name: T(u_name)}`` and ``Σ log |det ∂T/∂u|`` of shape ``(S,)`` for ``z: (S, D)``."""
        p, log_det = {}, z.new_zeros(z.shape[0])
        for name, u in self._split(z).items():
            p[name] = self._transforms[name](u)
            log_det = log_det + self._transforms[name].log_abs_det_jacobian(u, p[name]).reshape(z.shape[0], -1).sum(1)
        return p, log_det

    def coordinates(self, name: str) -> torch.Tensor:
        """The indices of parameter ``name``'s unconstrained coordinates within z ``(D,)``."""
        if name not in self.params:
            raise InputError(f"the model has no parameter {name!r}; its parameters are {list(self.params)}")
        position = list(self.params).index(name)
        start = sum(self._sizes[:position])
        return torch.arange(start, start + self._sizes[position])

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
        an unbiased estimate of the full-data value over a uniformly drawn minibatch; ``None`` (or all N indices)
        uses all data. The log-likelihood is summed over chunks of rows (``row_chunks``), so that no tensor of
        draws × rows holds more than ``chunk_elements`` entries: its memory is bounded whatever N and S are (but
        for the autograd graph, which keeps every chunk's saved tensors; ``value_and_grad`` does not).
        """
        if self._split_rows(indices):
            if torch.is_grad_enabled() and z.requires_grad:
                raise InputError("in a process group, the log density's gradient is value_and_grad's (it sums "
                                 "each process's rows across the group)")
            prior = sum(term for term, _ in self._terms(z, None, part="prior"))
            mine = sum((t for t, _ in self._terms(z, None, part="likelihood")), z.new_zeros(z.shape[0]))
            return prior + distributed.all_reduce_sum(mine)
        return sum(term for term, _ in self._terms(z, indices))

    def value_and_grad(self, z: torch.Tensor, indices: torch.Tensor | None = None, *, part: str = "all"):
        """``log_density(z, indices)`` ``(S,)`` and its gradient ``(S, D)``, one backward pass per chunk of rows,
        so that memory holds one chunk's graph at a time. ``part="likelihood"``: the log-likelihood alone, summed
        over the rows (``indices``) without the N/B scale; ``"prior"``: the log prior with the log-Jacobian.

        In a process group (``elbo.distributed``; torchrun, or ``elbo fit --nproc N``) every pass over all rows is
        shared out: each process sums its own block of rows and the sums are added across the group, so that every
        process gets the full-data value, as one process would, to the order of the additions."""
        if not self._split_rows(indices) or part == "prior":
            return self._value_and_grad(z, indices, part)
        prior = self._value_and_grad(z, None, "prior") if part == "all" else (0.0, 0.0)
        value, grad = self._value_and_grad(z, None, "likelihood")  # this process's rows
        summed = distributed.all_reduce_sum(torch.cat([value[:, None], grad], 1))  # one collective for both
        return prior[0] + summed[:, 0], prior[1] + summed[:, 1:]

    def subsample(self, num_rows: int) -> Model:
        """This model on ``num_rows`` of its rows drawn at random (torch's generator), held in memory, its
        log-likelihood scaled by ``N / num_rows``: the posterior a start can be found on when N is large (its mode
        near the full data's, its curvature theirs, to sampling error)."""
        rows = torch.randperm(self.num_data)[:num_rows].sort().values
        scale, log_likelihood = self.num_data / num_rows, self.log_likelihood
        return Model(params=self.params, log_prior=self.log_prior, data=_index(self.data, rows),
                     log_likelihood=lambda p, batch: scale * log_likelihood(p, batch), vectorize=self.vectorize)

    def _value_and_grad(self, z: torch.Tensor, indices: torch.Tensor | None, part: str):
        value, grad = z.new_zeros(z.shape[0]), torch.zeros_like(z)
        for term, z_leaf in self._terms(z.detach(), indices, leaf=True, part=part):
            (term_grad,) = torch.autograd.grad(term.sum(), z_leaf)
            value, grad = value + term.detach(), grad + term_grad
        return value, grad

    def _split_rows(self, indices: torch.Tensor | None) -> bool:
        """Whether a pass over all rows is shared out across a process group (a model with data, all rows)."""
        all_rows = indices is None or indices.shape[0] == self.num_data
        return all_rows and self.log_joint is None and distributed.world_size() > 1

    def _terms(self, z: torch.Tensor, indices: torch.Tensor | None, *, leaf: bool = False, part: str = "all"):
        """The log density as a sum of terms ``(S,)``: the log prior with the log-Jacobian, then each chunk's
        log-likelihood scaled by N/B (``part="all"``; unscaled for ``"likelihood"``, which leaves out the prior as
        ``"prior"`` leaves out the likelihood); each with the ``z`` it was computed from (a fresh leaf per term if
        ``leaf``)."""
        def point():
            if not leaf:
                return z
            return z.detach().requires_grad_(True)

        with torch.enable_grad() if leaf else contextlib.nullcontext():
            z_term = point()
            p, log_det = self._constrain(z_term)
            if self.log_joint is not None:
                if indices is not None and indices.numel() > 0 or part != "all":
                    raise InputError("this model has no data to subsample: it was given as a single log_joint")
                yield self._call("log_joint", p) + log_det, z_term
                return
            # the prior's term travels with the first chunk's (one backward pass where the rows are one chunk)
            head = self._call("log_prior", p) + log_det if part != "likelihood" else 0.0
            if part == "prior":
                yield head, z_term
                return
            if indices is not None and indices.shape[0] == self.num_data:
                indices = None  # all N rows (data_indices() without a batch size): the data itself, not a copy
            num_batch = self.num_data if indices is None else indices.shape[0]
            scale = self.num_data / num_batch if part == "all" else 1.0
            rows = distributed.block(num_batch) if self._split_rows(indices) else slice(0, num_batch)
            chunks = self.row_chunks(z.shape[0], num_batch, rows)
            if not chunks and part != "likelihood":  # a process of a group with no row of its own
                yield head, z_term
            for number, chunk in enumerate(chunks):
                if leaf and number > 0:
                    z_term = point()
                    p, _ = self._constrain(z_term)
                batch = _index(self.data, chunk if indices is None else indices[chunk])
                log_likelihood = self._call("log_likelihood", p, batch, num_batch=_length(chunk))
                yield (head if number == 0 else 0.0) + scale * log_likelihood.sum(1), z_term

    chunk_elements = 2**21  # draws × rows in one chunk of the log-likelihood (16 MiB of float64)
    chunk_bytes = 2**24  # the data's bytes read into memory for one chunk, where the data are rows on the disk

    def row_chunks(self, num_draws: int, num_rows: int | None = None, rows: slice | None = None) -> list[slice]:
        """Slices of ``range(num_rows)`` (all data by default; within ``rows`` if given, this process's block) with at
        most ``chunk_elements`` draws × rows each, and, where the data are rows read from the disk, at most
        ``chunk_bytes`` of them."""
        num_rows = self.num_data if num_rows is None else num_rows
        rows = slice(0, num_rows) if rows is None else rows
        step = max(1, self.chunk_elements // max(num_draws, 1))
        if self._row_bytes:  # rows read from the disk are copied in: a chunk holds at most chunk_bytes of them
            step = max(1, min(step, self.chunk_bytes // self._row_bytes))
        return [slice(start, min(start + step, rows.stop)) for start in range(rows.start, rows.stop, step)]

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
        them drawn uniformly without replacement (with replacement above ``WITH_REPLACEMENT`` rows); shape
        ``(1, 0)`` for a model given as a single log_joint."""
        device = None if self.data is None else _first_tensor(self.data).device
        if batch_size is None or batch_size >= self.num_data:
            return torch.arange(self.num_data, device=device).unsqueeze(0)
        if self.num_data > WITH_REPLACEMENT:  # O(B) where a permutation is O(N) a step; as unbiased
            return torch.randint(self.num_data, (batch_size,), device=device).unsqueeze(0)
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
        log_p = []
        with torch.no_grad():
            # all at once where that is one chunk of rows; else in order, only until one is finite (each candidate
            # costs a pass over a large data set)
            small = self.num_data * num_tries <= self.chunk_elements or num_tries <= 10
            for group in candidates.split([num_tries] if small else [1, 9, num_tries - 10]):
                log_p.append(self.log_density(group))
                finite = torch.isfinite(log_p[-1]).nonzero()
                if len(finite):
                    return group[finite[0, 0]]
        shown = ", ".join(str(v) for v in torch.cat(log_p)[:3].tolist())
        raise InputError(f"the log density is NaN or inf at every one of the {num_tries} initial points tried "
                         f"(0 and uniform draws in [-2, 2]^{self.dim} in the unconstrained space; values "
                         f"{shown}, ...): check log_joint and the parameters' constraints")

