"""elbo: variational inference you can check.

The core: bounds (``elbo.bounds``), gradient estimators (``elbo.estimators``), variational families
(``elbo.families``) and models with exact answers to check them against (``elbo.exact``).

Black-box VI for a user's model: ``elbo.Model``, ``elbo.fit`` (``elbo.bbvi``, with Pathfinder in ``elbo.pathfinder``
and batch and match in ``elbo.bam``; k̂ in ``elbo.psis``), checked against NUTS (``elbo.mcmc``) and against
posteriordb's reference posteriors (``elbo.posteriordb``).

Amortized models, one kind a folder under ``elbo.models`` (``images``: VAEs and IWAEs), registered in
``elbo.registry``; training (``elbo.train``), run directories (``elbo.runs``), evaluation (``elbo.evaluate``), ELBO
surgery (``elbo.surgery``), diagnostics (``elbo.diagnostics``), figures (``elbo.plots``) and the HTML report
(``elbo.report``). See ARCHITECTURE.md.

Submodules are imported when first used (``elbo.train``, ``from elbo import fit``), so that ``import elbo`` and the
command line's ``--help`` cost no import of torch.
"""

from __future__ import annotations

import importlib

from .errors import InputError

__version__ = "0.1.0"

_SUBMODULES = ("bam", "bbvi", "bounds", "configs", "diagnostics", "estimators", "evaluate", "exact", "families",
               "kinds", "likelihoods", "mcmc", "models", "pathfinder", "plots", "posteriordb", "protocols", "psis",
               "registry", "report", "runs", "surgery", "train")
_NAMES = {"Fit": "bbvi", "Model": "bbvi", "Param": "bbvi", "fit": "bbvi", "ordered_vector": "bbvi",
          "elbo": "bounds", "iwae": "bounds", "log_weights": "bounds", "renyi": "bounds",
          "Flow": "families", "FullRank": "families", "LowRank": "families", "MeanField": "families"}

__all__ = [*_SUBMODULES, *_NAMES, "InputError", "__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'elbo' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
