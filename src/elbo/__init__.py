"""elbo: variational inference you can check.

The core: bounds (``elbo.bounds``), gradient estimators (``elbo.estimators``), variational families
(``elbo.families``) and models with exact answers to check them against (``elbo.exact``).

Black-box VI for a user's model: ``elbo.Model``, ``elbo.fit``, the package ``elbo.bbvi`` (with Pathfinder, batch and
match, ADVI, k̂ in ``elbo.bbvi.psis``), checked against NUTS (``elbo.bbvi.mcmc``) and against posteriordb's reference
posteriors (``elbo.bbvi.posteriordb``). The modules that lived beside the core before the package
(``elbo.mcmc``, ``elbo.psis``, ``elbo.posteriordb``, ``elbo.pathfinder``, ``elbo.bam``, ``elbo.fit_config``) are
the package's, under their old names too (``_MOVED``): ``import elbo.mcmc`` gives ``elbo.bbvi.mcmc`` itself.

Amortized models, one kind a folder under ``elbo.models`` (``images``: VAEs and IWAEs), registered in
``elbo.registry``; training (``elbo.train``), run directories (``elbo.runs``), evaluation (``elbo.evaluate``), ELBO
surgery (``elbo.surgery``), diagnostics (``elbo.diagnostics``), figures (``elbo.plots``) and the HTML report
(``elbo.report``). See ARCHITECTURE.md.

Submodules are imported when first used (``elbo.train``, ``from elbo import fit``), so that ``import elbo`` and the
command line's ``--help`` cost no import of torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from ._lazy import lazy_attributes
from .errors import InputError

__version__ = "0.1.0"

_SUBMODULES = ("bbvi", "bounds", "configs", "diagnostics", "estimators", "evaluate", "exact", "families", "kinds",
               "likelihoods", "models", "plots", "protocols", "registry", "report", "runs", "surgery", "train")
# old module names -> their modules in the bbvi package (and everything under them: elbo.posteriordb.ports, ...)
_MOVED = {"bam": "bbvi.methods.bam", "fit_config": "bbvi.config", "mcmc": "bbvi.mcmc",
          "pathfinder": "bbvi.pathfinder", "posteriordb": "bbvi.posteriordb", "psis": "bbvi.psis"}
_NAMES = {"Fit": "bbvi", "Model": "bbvi", "Param": "bbvi", "fit": "bbvi", "ordered_vector": "bbvi",
          "elbo": "bounds", "iwae": "bounds", "log_weights": "bounds", "renyi": "bounds",
          "Flow": "families", "FullRank": "families", "LowRank": "families", "MeanField": "families"}

__all__ = [*_SUBMODULES, *_MOVED, *_NAMES, "InputError", "__version__"]


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``elbo.OLD[.sub]`` as the module ``elbo.NEW[.sub]`` of ``_MOVED`` (the same object, not a copy)."""

    @staticmethod
    def _target(fullname: str) -> str | None:
        head, _, rest = fullname.removeprefix(f"{__name__}.").partition(".")
        if not fullname.startswith(f"{__name__}.") or head not in _MOVED:
            return None
        return f"{__name__}.{_MOVED[head]}" + (f".{rest}" if rest else "")

    def find_spec(self, fullname, path=None, target=None):
        return None if self._target(fullname) is None else importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(self._target(spec.name))

    def exec_module(self, module):
        pass  # executed under its own name already


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


__getattr__, __dir__ = lazy_attributes(__name__, {name: name for name in _SUBMODULES} | _MOVED, _NAMES, __all__)
