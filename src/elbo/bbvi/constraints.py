"""Constraints that torch.distributions lacks: ordered vectors (``elbo.ordered_vector``), with their bijection
registered in ``biject_to`` so that a ``Param`` may use them like any of torch's."""

from __future__ import annotations

import torch
from torch.distributions import Transform, biject_to, constraints
from torch.distributions.constraints import Constraint

__all__ = ["ordered_vector", "OrderedTransform"]


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

