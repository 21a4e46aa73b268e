"""Registries: the tables of names that the configs, their validation and the command line all read.

A ``Registry`` maps a name to an entry. An entry may be given as the object itself or as ``"module:attribute"``,
imported on first use, so that reading a registry's names (``elbo train --help``) imports no heavy module. The
built-in entries are registered at the end of this module, as such strings; a user's are registered the same way
(see ARCHITECTURE.md, "how to add a model kind"). This module imports nothing of the package but the checks.

- ``KINDS``: model kinds (``elbo.models.Kind``), e.g. ``"images"``;
- ``DATASETS``: data sets (``elbo.models.Dataset``), each of one kind, e.g. ``"mnist"``;
- ``LIKELIHOODS``: decoder heads ``p(x|z)`` (classes), e.g. ``"bernoulli"``.
"""

from __future__ import annotations

import importlib

from ._checks import one_of

__all__ = ["Registry", "KINDS", "DATASETS", "LIKELIHOODS", "GAUSSIAN_SCALES"]


class Registry:
    """Names to entries, in the order they were registered; ``registry[name]`` imports a lazy entry once."""

    def __init__(self, what: str):
        self.what = what  # the argument the names are values of, as error messages name it
        self._entries: dict[str, object] = {}

    def register(self, name: str, entry, *, replace: bool = False):
        """Add ``entry`` (an object, or ``"module:attribute"``) under ``name``; returns the entry."""
        if name in self._entries and not replace:
            raise ValueError(f"{self.what} {name!r} is registered already (pass replace=True to replace it)")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        del self._entries[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __eq__(self, other) -> bool:
        """A registry equals the tuple (or list) of its names, in order, as the command line's choices hold them."""
        if isinstance(other, (tuple, list)):
            return self.names() == tuple(other)
        return other is self

    __hash__ = object.__hash__

    def __iter__(self):
        return iter(self._entries)

    def check(self, name, *, context: str = "") -> str:
        """``name``, or ``InputError`` "WHAT must be one of ..." when it is not registered."""
        return one_of(self.what, name, self.names(), context=context)

    def __getitem__(self, name: str):
        entry = self._entries[self.check(name)]
        if isinstance(entry, str):
            entry = self._entries[name] = resolve(entry)
        return entry


def resolve(entry):
    """``entry``, or for ``"module:attribute"`` the attribute, imported."""
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return entry


KINDS = Registry("model")
DATASETS = Registry("data set")
LIKELIHOODS = Registry("likelihood")

# σ of the Gaussian head: fixed, one learned for every dimension, one learned per dimension
GAUSSIAN_SCALES = ("fixed", "shared", "per_pixel")

# the built-in entries, imported when first used
KINDS.register("images", "elbo.models.images:KIND")
for _name in ("digits", "mnist", "binarized_mnist", "frey", "images"):
    DATASETS.register(_name, f"elbo.models.images:{_name.upper()}")
KINDS.register("topics", "elbo.models.topics:KIND")
DATASETS.register("20news", "elbo.models.topics:TWENTY_NEWS")
DATASETS.register("bbc", "elbo.models.topics:BBC")
DATASETS.register("corpus", "elbo.models.topics:CORPUS")
KINDS.register("spikes", "elbo.models.spikes:KIND")
DATASETS.register("lorenz", "elbo.models.spikes:LORENZ")
DATASETS.register("spikes", "elbo.models.spikes:RECORDINGS")
LIKELIHOODS.register("bernoulli", "elbo.likelihoods:BernoulliLikelihood")
LIKELIHOODS.register("gaussian", "elbo.likelihoods:GaussianLikelihood")
LIKELIHOODS.register("multinomial", "elbo.likelihoods:MultinomialLikelihood")
