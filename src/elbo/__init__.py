"""elbo: variational inference you can check.

Bounds (``elbo.bounds``), gradient estimators (``elbo.estimators``), variational families
(``elbo.families``) and models with exact answers to check them against (``elbo.exact``); variational
autoencoders (``elbo.vae``), their data (``elbo.data``), training (``elbo.train``), evaluation and ELBO surgery
(``elbo.evaluate``); black-box VI for user-defined models (``elbo.Model``, ``elbo.fit``; ``elbo.bbvi``, with
Pathfinder in ``elbo.pathfinder`` and batch and match in ``elbo.bam``) checked against NUTS (``elbo.mcmc``) and
against posteriordb's reference posteriors (``elbo.posteriordb``); diagnostics (``elbo.diagnostics``: PSIS k̂,
KL per unit, gradient signal-to-noise); and, imported on demand since they load matplotlib, figures
(``elbo.plots``) and the HTML report of a run (``elbo.report``).
"""

from . import bam, bbvi, bounds, data, diagnostics, estimators, evaluate, exact, families, mcmc, pathfinder, train, vae
from .bbvi import Fit, Model, Param, fit, ordered_vector
from .bounds import elbo, iwae, log_weights, renyi
from .families import Flow, FullRank, LowRank, MeanField

__version__ = "0.1.0"

__all__ = [
    "bam",
    "bbvi",
    "pathfinder",
    "bounds",
    "diagnostics",
    "estimators",
    "exact",
    "families",
    "data",
    "evaluate",
    "train",
    "vae",
    "mcmc",
    "elbo",
    "iwae",
    "log_weights",
    "renyi",
    "MeanField",
    "FullRank",
    "LowRank",
    "Flow",
    "Model",
    "Param",
    "fit",
    "Fit",
    "ordered_vector",
    "__version__",
]
