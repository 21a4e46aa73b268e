"""One vocabulary of array functions and log densities over two array libraries, torch and JAX.

A posteriordb port writes its log density once, in terms of an ``Ops`` (``ops.log``, ``ops.normal(x, loc,
scale)``, ...), for one draw of its parameters; ``TORCH`` runs it for ``elbo.Model`` (vectorized by
``torch.func.vmap``), ``jax_ops()`` for the NumPyro peers of ``benchmarks/posteriordb.py``, so every method is
measured on the same density. Log densities are elementwise (the caller sums), in nats, with all constants
(Stan's ``target += *_lpdf``), which matters only for log-evidence values, never for the posterior.

Arrays of both libraries share ``x.sum(-1)``, ``x.cumsum(-1)``, ``x @ y``, ``x.T``, ``x[index]`` and arithmetic;
what differs by name is here.
"""

from __future__ import annotations

import math

__all__ = ["Ops", "TORCH", "jax_ops"]

LOG_2PI = math.log(2 * math.pi)
LOG_PI = math.log(math.pi)


class Ops:
    """Functions of one array library (``xp``: torch or jax.numpy) under shared names, and log densities."""

    def __init__(self, name, xp, *, lgamma, logsumexp, log_sigmoid, softplus, stack, concatenate, scan,
                 asarray):
        self.name, self.xp = name, xp
        for fn in ("exp", "log", "log1p", "expm1", "sqrt", "tanh", "sin", "cos", "abs", "where", "logaddexp",
                   "maximum", "minimum", "square", "arange", "zeros", "ones", "sigmoid"):
            setattr(self, fn, getattr(xp, fn, None))  # None where xp lacks it; set below
        self.lgamma, self.logsumexp, self.log_sigmoid, self.softplus = lgamma, logsumexp, log_sigmoid, softplus
        self.stack, self.concatenate, self.scan, self.asarray = stack, concatenate, scan, asarray

    def __repr__(self):
        return f"Ops({self.name})"

    # --- log densities, elementwise --------------------------------------------------------------------------

    def normal(self, x, loc, scale):
        return -0.5 * ((x - loc) / scale) ** 2 - self.log(scale) - 0.5 * LOG_2PI

    def lognormal(self, x, loc, scale):
        return self.normal(self.log(x), loc, scale) - self.log(x)

    def student_t(self, x, df, loc, scale):
        return (self.lgamma((df + 1) / 2) - self.lgamma(df / 2) - 0.5 * self.log(df * math.pi) - self.log(scale)
                - (df + 1) / 2 * self.log1p(((x - loc) / scale) ** 2 / df))

    def cauchy(self, x, loc, scale):
        return -LOG_PI - self.log(scale) - self.log1p(((x - loc) / scale) ** 2)

    def exponential(self, x, rate):
        return self.log(rate) - rate * x

    def gamma(self, x, shape, rate):
        return shape * self.log(rate) - self.lgamma(shape) + (shape - 1) * self.log(x) - rate * x

    def inv_gamma(self, x, shape, scale):
        return shape * self.log(scale) - self.lgamma(shape) - (shape + 1) * self.log(x) - scale / x

    def beta(self, x, a, b):
        return ((a - 1) * self.log(x) + (b - 1) * self.log1p(-x)
                + self.lgamma(a + b) - self.lgamma(a) - self.lgamma(b))

    def bernoulli_logit(self, y, logit):
        """``y log σ(η) + (1 - y) log σ(-η)`` for ``y`` in {0, 1}."""
        return y * self.log_sigmoid(logit) + (1 - y) * self.log_sigmoid(-logit)

    def binomial_logit(self, k, n, logit):
        return (self.lgamma(n + 1.0) - self.lgamma(k + 1.0) - self.lgamma(n - k + 1.0)
                + k * self.log_sigmoid(logit) + (n - k) * self.log_sigmoid(-logit))

    def poisson_log(self, k, log_rate):
        return k * log_rate - self.exp(log_rate) - self.lgamma(k + 1.0)

    def std_normal_lccdf0(self):
        """``log P(X > 0) = log ½`` for a distribution symmetric about 0: Stan's truncation term of a half prior."""
        return -math.log(2.0)

    def multi_normal_cholesky(self, x, loc, scale_tril):
        """``log N(x; loc, L Lᵀ)`` for vectors ``x``, ``loc`` of shape ``(n,)`` and lower-triangular ``L``; a scalar."""
        solved = self.solve_triangular(scale_tril, x - loc)
        n = x.shape[-1]
        diagonal = self.diagonal(scale_tril)
        return -0.5 * (solved ** 2).sum(-1) - self.log(diagonal).sum(-1) - 0.5 * n * LOG_2PI

    # --- functions -----------------------------------------------------------------------------------------

    def linear_recurrence(self, a, b):
        """``s`` with ``s_0 = a_0``, ``s_t = b s_{t-1} + a_t`` for a vector ``a`` of shape ``(T,)`` and a scalar
        ``b``: ``s_t = Σ_{j≤t} b^{t-j} a_j`` by ⌈log₂ T⌉ doubling steps (Hillis and Steele's scan, each step adds
        ``b^{2^k} s_{t-2^k}``), the same sums as the loop to rounding, with no division by powers of ``b``."""
        s, power, shift = a, b, 1
        while shift < a.shape[-1]:  # on the (static) length, not on values
            s = s + power * self.concatenate([self.xp.zeros_like(s[:shift]), s[:-shift]])
            power, shift = power * power, 2 * shift
        return s

    def exp_quad_cov(self, x, alpha, rho):
        """Stan's ``gp_exp_quad_cov(x, alpha, rho)`` (``cov_exp_quad``) of points ``x`` of shape ``(n,)``:
        ``alpha² exp(-(x_i - x_j)² / (2 rho²))``, an ``(n, n)`` matrix (without jitter)."""
        return alpha ** 2 * self.exp(-0.5 * ((x[:, None] - x[None, :]) / rho) ** 2)


def _torch_ops():
    import torch
    import torch.nn.functional as F

    def scan(f, init, xs):
        """``carry, y = f(carry, x)`` over the rows of ``xs``; returns the last carry and the stacked ys."""
        carry, ys = init, []
        for x in xs:
            carry, y = f(carry, x)
            ys.append(y)
        return carry, torch.stack(ys)

    ops = Ops("torch", torch, lgamma=torch.lgamma, logsumexp=lambda x, axis=-1: torch.logsumexp(x, dim=axis),
              log_sigmoid=F.logsigmoid, softplus=F.softplus, stack=lambda xs, axis=0: torch.stack(xs, dim=axis),
              concatenate=lambda xs, axis=0: torch.cat(xs, dim=axis), scan=scan,
              asarray=lambda x: torch.as_tensor(x, dtype=torch.get_default_dtype()))
    # torch's functions take tensors only; a port passes Python numbers too (a prior's scale)
    for fn, scalar_fn in (("log", math.log), ("exp", math.exp), ("log1p", math.log1p), ("sqrt", math.sqrt),
                          ("lgamma", math.lgamma)):
        tensor_fn = getattr(ops, fn)
        setattr(ops, fn, lambda x, t=tensor_fn, s=scalar_fn: s(x) if isinstance(x, (int, float)) else t(x))
    ops.solve_triangular = lambda L, b: torch.linalg.solve_triangular(L, b.unsqueeze(-1), upper=False).squeeze(-1)
    ops.diagonal = lambda L: torch.diagonal(L, dim1=-2, dim2=-1)
    ops.cholesky = torch.linalg.cholesky
    ops.eye = torch.eye
    return ops


TORCH = _torch_ops()


def jax_ops() -> Ops:
    """The same vocabulary over jax.numpy (float64: JAX's x64 mode is switched on)."""
    import jax
    import jax.numpy as jnp
    import jax.scipy as jsp

    jax.config.update("jax_enable_x64", True)
    ops = Ops("jax", jnp, lgamma=jsp.special.gammaln, logsumexp=lambda x, axis=-1: jsp.special.logsumexp(x, axis),
              log_sigmoid=jax.nn.log_sigmoid, softplus=jax.nn.softplus,
              stack=lambda xs, axis=0: jnp.stack(xs, axis=axis),
              concatenate=lambda xs, axis=0: jnp.concatenate(xs, axis=axis), scan=jax.lax.scan,
              asarray=lambda x: jnp.asarray(x, dtype=jnp.float64))
    ops.sigmoid = jax.nn.sigmoid
    ops.solve_triangular = lambda L, b: jsp.linalg.solve_triangular(L, b, lower=True)
    ops.diagonal = lambda L: jnp.diagonal(L, axis1=-2, axis2=-1)
    ops.cholesky = jnp.linalg.cholesky
    ops.eye = jnp.eye
    return ops
