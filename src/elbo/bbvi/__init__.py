"""Black-box VI for a user's model: ``elbo.fit(model)`` on an ``elbo.Model``.

One job a module:

- ``model``: the model language, ``Param`` and ``Model`` (named constrained parameters, a log joint density, data
  to subsample), and the unconstrained space VI happens in; ``constraints``: ``ordered_vector``;
- ``model_file``: a user's model file for ``elbo fit`` (``load_model``), its errors in one line;
- ``config``: the settings (``FitConfig``) and the table of methods (``METHODS``), importable without torch;
- ``driver``: ``fit``: the initial point, the start (``pathfinder``), the method, the diagnostics;
- ``methods/``: one file a method (``advi``, ``bam``, ``pathfinder``) behind ``methods.Start`` →
  ``methods.MethodResult``; ``gaussians``: q's families placed at a Gaussian; ``stopping``: the window rule;
- ``result``: ``Fit`` (draws, k̂, evidence, PSIS-reweighted summaries) and ``summarize``;
- ``psis``: PSIS and k̂; ``mcmc``: NUTS as the reference; ``posteriordb/``: reference posteriors ported to torch.

Names are imported when first used, so that ``elbo.bbvi.config`` (the command line's choices) costs no torch.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = ["Param", "Model", "memmap", "read_rows", "FitConfig", "Method", "Fit", "fit", "load_model", "summarize",
           "has_converged",
           "ordered_vector", "OrderedTransform", "FAMILIES", "FAMILY_CLASSES", "ESTIMATORS", "METHODS", "INITS",
           "NumericalError", "seeded"]

_NAMES = {"Param": "model", "Model": "model", "memmap": "model", "read_rows": "rows", "FitConfig": "config",
          "Method": "config",
          "FAMILIES": "config", "ESTIMATORS": "config", "METHODS": "config", "INITS": "config", "Fit": "result",
          "summarize": "result", "fit": "driver", "load_model": "model_file", "has_converged": "stopping",
          "ordered_vector": "constraints", "OrderedTransform": "constraints", "FAMILY_CLASSES": "gaussians",
          "NumericalError": "gaussians", "seeded": "context"}
_SUBMODULES = ("config", "constraints", "context", "control_variate", "driver", "gaussians", "mcmc", "methods", "model",
               "model_file", "pathfinder", "posteriordb", "psis", "result", "rows", "stopping")


__getattr__, __dir__ = lazy_attributes(__name__, {name: name for name in _SUBMODULES}, _NAMES,
                                       [*__all__, *_SUBMODULES])
