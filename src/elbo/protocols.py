"""The interfaces the library's generic code relies on, declared (``typing.Protocol``, checkable at run time).

A model is either a ``JointModel`` (``log_prob(x, z)``, the log joint) or a ``LatentModel`` (``prior()`` and
``likelihood(z)``, one stochastic layer; every ``LatentModel`` is scored through its log joint too). A guide is a
callable ``x -> q(z|x)``. The optional capabilities below are what callers used to probe with ``hasattr``; they test
them with ``isinstance`` and, where one is missing, say so with ``check_capability``:

- ``LatentModel``: the ELBO's KL in closed form, ELBO surgery, KL per unit (with ``one_gaussian_layer``);
- ``ChecksData``: ``check_data(x)`` refuses data the model cannot score, once per data set (the bounds then skip
  validation, a host synchronisation each);
- ``InitFromData``: ``init_from_data(x)`` starts parameters at the training data's statistics;
- ``LatentLayers``: ``latent_dims``, the sizes of the stochastic layers of a latent ``z: (..., Σ_l d_l)``, which
  active units are counted over; a model without it has its latent units counted as one layer only if ``q``'s
  event is a vector;
- ``HasEncoder``: ``encoder_parameters()``, which split a model's parameters into encoder (``q``) and decoder
  (everything else), for the gradient signal-to-noise ratio;
- for a distribution ``q``: ``StopGradient`` (``stop_gradient()``, the same q with its parameters cut from the
  graph, for STL and DReG) and ``MeanEstimate`` (``mean_estimate()``, ``E_q[z]`` for a q without a closed-form mean).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .errors import InputError

__all__ = ["JointModel", "LatentModel", "Guide", "ChecksData", "InitFromData", "ConjugateUpdates", "BatchStream",
           "LatentLayers", "HasEncoder", "StopGradient", "MeanEstimate", "check_capability", "one_gaussian_layer"]


@runtime_checkable
class JointModel(Protocol):
    def log_prob(self, x: Any, z: Any) -> Any: ...


@runtime_checkable
class LatentModel(Protocol):
    def prior(self) -> Any: ...

    def likelihood(self, z: Any) -> Any: ...


@runtime_checkable
class Guide(Protocol):
    def __call__(self, x: Any) -> Any: ...


@runtime_checkable
class ChecksData(Protocol):
    def check_data(self, x: Any) -> None: ...


@runtime_checkable
class InitFromData(Protocol):
    def init_from_data(self, x: Any) -> None: ...


@runtime_checkable
class ConjugateUpdates(Protocol):
    """A model fitted by closed-form (natural-gradient) steps rather than gradient ascent: ``update(x)`` takes one
    step on this process's block ``x`` of a minibatch and returns its points' bounds ``(B,)`` (e.g. LDA by SVI)."""

    def update(self, x: Any) -> Any: ...


@runtime_checkable
class BatchStream(Protocol):
    """Training data read from disk a minibatch at a time: ``len()`` points, and ``batches(batch_size, rank=,
    world_size=)``, this process's block of each minibatch, in the stream's order."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Any: ...


@runtime_checkable
class LatentLayers(Protocol):
    latent_dims: tuple[int, ...]


@runtime_checkable
class HasEncoder(Protocol):
    def encoder_parameters(self) -> Any: ...


@runtime_checkable
class StopGradient(Protocol):
    def stop_gradient(self) -> Any: ...


@runtime_checkable
class MeanEstimate(Protocol):
    def mean_estimate(self) -> Any: ...


_WHAT = {LatentModel: "prior() and likelihood(z) (one stochastic layer)", ChecksData: "check_data(x)",
         InitFromData: "init_from_data(x)", LatentLayers: "latent_dims", HasEncoder: "encoder_parameters()"}


def check_capability(model, capability: type, needed_for: str) -> None:
    """``InputError`` "this model (NAME) has no X, so NEEDED_FOR is not available" unless ``model`` has it."""
    if not isinstance(model, capability):
        raise InputError(f"this model ({type(model).__name__}) has no {_WHAT[capability]}, so {needed_for} is not "
                         f"available")


def one_gaussian_layer(model) -> bool:
    """Whether ``model`` has one stochastic layer with a factorised Gaussian prior over a vector ``z``: what ELBO
    surgery and the KL of each unit need (the guide must give diagonal Gaussians too, checked where it is called)."""
    if not isinstance(model, LatentModel):
        return False
    from torch.distributions import Independent, Normal

    prior = model.prior()
    return isinstance(prior, Independent) and isinstance(prior.base_dist, Normal) and \
        prior.reinterpreted_batch_ndims == 1 and len(prior.event_shape) == 1
