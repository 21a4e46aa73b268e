"""elbo: variational inference you can check.

Bounds (``elbo.bounds``), gradient estimators (``elbo.estimators``), variational families
(``elbo.families``) and models with exact answers to check them against (``elbo.exact``); variational
autoencoders (``elbo.vae``), their data (``elbo.data``), training (``elbo.train``), evaluation and ELBO surgery
(``elbo.evaluate``), diagnostics (``elbo.diagnostics``), and, imported on demand since they load matplotlib, figures
(``elbo.plots``) and the HTML report of a run (``elbo.report``).
"""

from . import bounds, data, diagnostics, estimators, evaluate, exact, families, train, vae
from .bounds import elbo, iwae, log_weights, renyi
from .families import Flow, FullRank, LowRank, MeanField

__version__ = "0.1.0"

__all__ = [
    "bounds",
    "estimators",
    "exact",
    "families",
    "data",
    "diagnostics",
    "evaluate",
    "train",
    "vae",
    "elbo",
    "iwae",
    "log_weights",
    "renyi",
    "MeanField",
    "FullRank",
    "LowRank",
    "Flow",
    "__version__",
]
