"""A package whose submodules and names are imported when first used (PEP 562), so that importing it, and the
command line's ``--help``, cost no import of torch."""

from __future__ import annotations

import importlib

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, submodules: dict, names: dict, public: list):
    """``__getattr__`` and ``__dir__`` for ``package``: ``submodules`` maps an attribute to the module it is
    (relative to the package), ``names`` an attribute to the module (relative) that defines it; ``public`` is
    what ``dir()`` lists."""

    def __getattr__(name: str):
        if name in submodules:
            return importlib.import_module(f".{submodules[name]}", package)
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(public)

    return __getattr__, __dir__
