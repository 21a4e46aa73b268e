"""Optional dependencies (ArviZ, Pyro), imported only when a feature needs them."""

from __future__ import annotations

import importlib
import warnings

__all__ = ["require"]


def require(module: str, *, extra: str, feature: str):
    """Import ``module`` or fail with a message naming the extra that installs it."""
    try:
        with warnings.catch_warnings():
            # ArviZ 0.2x announces its coming 1.0 refactor on every import; it says nothing about this use.
            warnings.simplefilter("ignore", FutureWarning)
            return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"{feature} needs {module}, which is not installed: "
                                  f"pip install 'elbo[{extra}]'", name=module) from error
