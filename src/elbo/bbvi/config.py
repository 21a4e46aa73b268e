"""The settings of ``elbo.fit`` and the names they take, importable without torch (the command line reads them).

``FitConfig`` validates itself on construction; ``FAMILIES``, ``INITS`` and ``ESTIMATORS`` are the names of its
``family``, ``init`` and ``estimator``. ``METHODS`` is the table of methods (a ``Registry`` of ``Method``): a
method's name, the module function that runs it (``"module:attribute"``, imported when a fit uses it), the
families it fits and whether it takes minibatches. A new method is a file under ``elbo/bbvi/methods/`` and one
``METHODS.register`` line here (or in user code); see ARCHITECTURE.md, "How to add a black-box VI method".
``elbo.bbvi.gaussians`` maps the family names to the classes of ``elbo.families`` (``FAMILY_CLASSES``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._checks import check_int_at_least, check_positive_float, one_of
from ..errors import InputError
from ..registry import Registry

if TYPE_CHECKING:
    import torch

__all__ = ["FitConfig", "Method", "FAMILIES", "ESTIMATORS", "METHODS", "INITS", "FULLRANK_MAX_DIM"]

# q's families, elbo.families' classes in this order (hierarchical: GlobalLocal, with the parameters `local` names)
FAMILIES = ("meanfield", "fullrank", "lowrank", "flow", "hierarchical")
ESTIMATORS = ("stl", "reparam", "score")  # of the ELBO's gradient; stl (the default) for a reparameterizable q
INITS = ("pathfinder", "map", "point")
# ADVI's Adam learning rate and draws a step by default, and those of the method "flow" (its couplings on top of a
# fitted Gaussian; chosen on benchmarks/flows.py)
ADVI_LR, FLOW_LR = 0.1, 0.005
ADVI_SAMPLES, FLOW_SAMPLES = 8, 32
MULTISTART_MAX_ROWS = 100_000  # rows above which the search for missed modes is off by default
NUM_PATHS = 4  # Pathfinder paths from dispersed points after a fit, looking for modes q missed
# the largest D for which fit's default q is full rank (a D × D covariance, batch and match's 2 D + 2 draws a step)
FULLRANK_MAX_DIM = 500


@dataclass(frozen=True)
class Method:
    """A method of ``elbo.fit``: ``run(start) -> MethodResult`` (``elbo.bbvi.methods``), given as the function or
    as ``"module:attribute"``; the ``families`` of q it fits; whether it takes minibatches (``batch_size``); and a
    line for ``elbo fit --help``."""

    run: object
    families: tuple = FAMILIES
    minibatch: bool = False
    help: str = ""


METHODS = Registry("method")
METHODS.register("bam", Method("elbo.bbvi.methods.bam:run", ("fullrank",),
                               help="batch and match, closed-form steps matching scores (full rank)"))
METHODS.register("advi", Method("elbo.bbvi.methods.advi:run", FAMILIES, minibatch=True,
                                help="Adam on the ELBO (any family, minibatches)"))
METHODS.register("pathfinder", Method("elbo.bbvi.methods.pathfinder:run", ("fullrank",),
                                      help="Pathfinder's best Gaussian, no further steps (full rank)"))
METHODS.register("flow", Method("elbo.bbvi.flows:run", ("flow",),
                                help="the default Gaussian fit, then a RealNVP flow on top of it by ADVI (flow)"))


@dataclass(frozen=True)
class FitConfig:
    """Settings of ``fit``, validated on construction.

    - ``family``: q, one of ``"fullrank"``, ``"meanfield"``, ``"lowrank"`` (rank 2), ``"flow"`` (``elbo.families``);
      ``"hierarchical"`` (``elbo.families.GlobalLocal``): the parameters ``local`` names are each group's, the others
      global; the globals full rank, each local independent of the other locals given the globals (the exact
      posterior of a Gaussian hierarchical model is in it), at a cost linear in the number of groups;
      ``None`` (the default): ``"hierarchical"`` where ``local`` is given, else full rank for a model of at most
      ``FULLRANK_MAX_DIM`` (500) unconstrained coordinates and mean-field above (``for_model``; ``Fit.reason`` says
      which and why);
    - ``method``: how q is fitted. ``"bam"`` (the default for a full-rank q): batch and match (Cai et al. 2024,
      ``elbo.bam``), closed-form steps that match q's score to the posterior's, ``num_samples`` draws a step;
      ``"advi"``: stochastic-gradient ascent on the ELBO (Kucukelbir et al. 2017) with Adam, the only method for
      the other families and for minibatches; ``"pathfinder"``: the best Gaussian of Pathfinder (Zhang et al. 2022,
      ``elbo.pathfinder``), full rank, no further steps; ``"flow"`` (the default for ``family="flow"``): the default
      Gaussian fit, then a RealNVP flow on top of it, kept where it beats the Gaussian (``elbo.bbvi.flows``);
    - ``init``: where q starts. ``"pathfinder"`` (the default): Pathfinder's best Gaussian (its diagonal for a
      mean-field q); ``"map"``: the mode found by L-BFGS, with the sds of L-BFGS's inverse-Hessian estimate
      there (``init_scale`` where it has none); ``"point"``: the first finite point of ``Model.initial_point`` (0,
      then uniform in [-2, 2] as Stan) with scale ``init_scale``; or a dict
      ``{name: constrained value}`` for some or all parameters (the others from ``"point"``);
    - ``num_samples``: draws of q per step (8 for ADVI's ELBO estimate, 32 for the method ``"flow"``'s; BaM uses
      ``max(num_samples, 2 D + 2)`` unless given more);
    - ``estimator``: ADVI's gradient, ``"stl"`` (Roeder et al. 2017), ``"reparam"`` or ``"score"``;
    - ``lr``, ``lr_decay_steps``: ADVI's Adam, learning rate ``lr / (1 + t / lr_decay_steps)`` at step t; ``lr``
      ``None``: 0.1 for ADVI, 0.01 for a full-rank q on minibatches, 0.005 for the method ``"flow"``'s couplings
      (``adam_lr``: Adam moves each of a full-rank factor's D(D+1)/2 entries by about lr a step whatever its noisy
      gradient, and at 0.1 they wandered: 33 sds off on a 100-dimensional regression in minibatches of 1,000; at
      0.01, 0.03);
    - ``window``, ``max_steps``: stop when the mean ELBO estimate of the last ``window`` steps is no longer above
      that of the window before by 2 standard errors of their difference, at two checks in a row (``has_converged``;
      the ELBO's Monte Carlo error sets the scale, so the rule works at any size of ELBO), or after ``max_steps``.
      q is then the average of its parameters over the last window (iterate averaging). ``window``: 100 for ADVI,
      10 for BaM (``None``: by method);
    - ``batch_size``: ADVI on minibatches of that many data points, the log-likelihood scaled by N/B (a model given
      with ``data``); ``None``: all data every step;
    - ``num_draws``: draws of the final q for the diagnostics (k̂, log evidence, summaries), each on all data;
      ``None``: 10,000, or as many as ``diagnostics_seconds`` allows where the data make a draw slow (timed on the
      first 100) and as many as 2²⁴ numbers hold where D is large (1,677 at D = 10,000), but not fewer than 1,000;
    - ``dtype``: the floating-point type of q, its fit and its diagnostics (``None``: torch's default); the model's
      own tensors must be in it too (or promote to it);
    - ``seed``: seeds torch's generator for this fit only (``None``: the caller's generator);
    - ``progress``: a tqdm progress bar;
    - ``repair``: where k̂ ≥ 0.7, fit a RealNVP flow on top of the Gaussian, and where its k̂ is still ≥ 0.7, run
      NUTS in the flow's warped space (NeuTra) and return its draws (``elbo.bbvi.repair``); ``Fit.reason`` names the
      method that produced the numbers; with ``repair=True`` where q missed modes, q is the mixture of q and their
      Gaussians, weighted by importance sampling;
    - ``num_paths``: after the fit, Pathfinder from that many points drawn uniformly in [-2, 2]^D, looking for modes
      q missed (``elbo.bbvi.multistart``); one is named in a warning. ``None``: 4 for D ≤ 500 and N ≤ 100,000 rows
      on all data, else 0.
    """

    family: str | None = None  # None: "fullrank" up to D = FULLRANK_MAX_DIM, else "meanfield" (for_model)
    method: str | None = None  # None: "bam" for a full-rank q on all data, "advi" otherwise
    init: object = "pathfinder"
    num_samples: int | None = None  # None: 8 for ADVI, 2 D + 2 for BaM
    estimator: str = "stl"
    lr: float | None = None  # None: adam_lr() (the method "flow" sets FLOW_LR)
    lr_decay_steps: int = 300
    init_scale: float = 1.0
    window: int | None = None
    max_steps: int = 10_000
    batch_size: int | None = None
    local: tuple | None = None  # the parameters local to a group (family "hierarchical"); the others are global
    num_draws: int | None = None  # None: 10,000, or fewer (not below 1,000) where diagnostics_seconds says
    diagnostics_seconds: float = 30.0
    dtype: torch.dtype | None = None
    seed: int | None = None
    progress: bool = True
    repair: bool = False  # k̂ ≥ 0.7: a flow on the Gaussian, then NeuTra (elbo.bbvi.repair)
    num_paths: int | None = None  # None: 4 for D ≤ FULLRANK_MAX_DIM on all data, else 0 (elbo.bbvi.multistart)

    def __post_init__(self):
        if self.family is not None and self.family not in FAMILIES:
            raise InputError(f"unknown family {self.family!r}: use one of {', '.join(map(repr, FAMILIES))}",
                             argument="family")
        if self.method is not None:
            METHODS.check(self.method)
        self._check_local()
        if self.family is not None:
            self._resolve_method()
        if not isinstance(self.init, dict):
            one_of("init", self.init, INITS, context="or a dict of constrained values")
        one_of("estimator", self.estimator, ESTIMATORS, context="for elbo.fit")
        self._check_counts(self.method)
        if self.lr is not None:
            check_positive_float(lr=self.lr)
        check_positive_float(init_scale=self.init_scale, diagnostics_seconds=self.diagnostics_seconds)
        self._check_dtype()
        if not isinstance(self.repair, bool):
            raise InputError(f"repair must be True or False, got {self.repair!r}", argument="repair")
        if self.seed is not None and not isinstance(self.seed, int):
            raise InputError(f"seed must be None or an integer, got {self.seed!r}", argument="seed")

    def _check_local(self) -> None:
        if self.local is None:
            if self.family == "hierarchical":
                raise InputError("family='hierarchical' needs local: the names of the parameters local to a group "
                                 "(the others are global)", argument="local")
            return
        local = (self.local,) if isinstance(self.local, str) else self.local
        if not isinstance(local, (tuple, list)) or not local or not all(isinstance(n, str) for n in local):
            raise InputError(f"local must name parameters (a tuple of str), got {self.local!r}", argument="local")
        if self.family not in (None, "hierarchical"):
            raise InputError(f"local (the parameters local to a group) is for family='hierarchical', not "
                             f"family={self.family!r}", argument="local")
        object.__setattr__(self, "local", tuple(local))

    def _resolve_method(self) -> None:
        method = self.method or ("bam" if self.family == "fullrank" and self.batch_size is None else
                                 "flow" if self.family == "flow" else "advi")
        entry = METHODS[method]
        if self.family not in entry.families:
            fits = "a full-rank Gaussian" if entry.families == ("fullrank",) else \
                f"family {' or '.join(map(repr, entry.families))}"
            raise InputError(f"method={method!r} fits {fits}: use family={entry.families[0]!r}, or method='advi' "
                             f"for family={self.family!r}", argument="method")
        object.__setattr__(self, "method", method)

    def adam_lr(self) -> float:
        """ADVI's learning rate: ``lr``, or where it is None 0.01 for a full-rank q on minibatches, else ``ADVI_LR``
        (the method ``flow`` sets ``FLOW_LR``)."""
        if self.lr is not None:
            return self.lr
        return 0.01 if self.family == "fullrank" and self.batch_size is not None else ADVI_LR

    def for_model(self, dim: int) -> tuple[FitConfig, str]:
        """These settings with ``family`` (and so ``method``) chosen for a model of ``dim`` unconstrained
        coordinates where they were left to ``fit`` (``None``), and a line saying what was chosen and why."""
        if self.family is not None:
            return self, ""
        allowed = FAMILIES if self.method is None else METHODS[self.method].families
        if self.local is not None and "hierarchical" in allowed:
            family, why = "hierarchical", f"local = {', '.join(self.local)}: globals full rank, locals given them"
        elif dim <= FULLRANK_MAX_DIM and "fullrank" in allowed:
            family, why = "fullrank", f"D = {dim} ≤ {FULLRANK_MAX_DIM}"
        else:
            family = "meanfield" if "meanfield" in allowed else allowed[0]
            why = (f"D = {dim} > {FULLRANK_MAX_DIM}: a full-rank q costs D² memory and batch and match 2 D + 2 "
                   f"draws and a D³ step; family='fullrank' asks for it" if dim > FULLRANK_MAX_DIM else
                   f"method={self.method!r} fits it")
        return dataclasses.replace(self, family=family), f"family {family!r} by default ({why})"

    def _check_counts(self, method: str | None) -> None:
        if self.num_paths is not None:
            check_int_at_least("num_paths", self.num_paths, 0)
        for name in ("num_samples", "lr_decay_steps", "window", "max_steps", "num_draws"):
            value = getattr(self, name)
            if value is None and name in ("num_samples", "window", "num_draws"):
                continue
            check_int_at_least(name, value, 1)
        if self.num_draws is not None and self.num_draws < 2:
            raise InputError(f"num_draws must be >= 2 (for k̂ and the evidence's stderr), got {self.num_draws}",
                             argument="num_draws")
        if self.batch_size is not None:
            check_int_at_least("batch_size", self.batch_size, 1)
            if method is not None and not METHODS[method].minibatch:
                minibatch = [name for name in METHODS if METHODS[name].minibatch]
                raise InputError(f"batch_size (minibatches) needs method {' or '.join(map(repr, minibatch))}; "
                                 f"method={method!r} uses all data", argument="batch_size")

    def _check_dtype(self) -> None:
        if self.dtype is None:
            return
        import torch  # only here: the configuration itself stays free of torch

        if not (isinstance(self.dtype, torch.dtype) and self.dtype.is_floating_point):
            raise InputError(f"dtype must be a floating-point torch.dtype (torch.float64, ...), got {self.dtype!r}",
                             argument="dtype")

    def paths_for(self, dim: int, num_data: int = 0) -> int:
        """Pathfinder paths from dispersed points searching for modes q missed: ``num_paths``, or by default
        ``NUM_PATHS`` (4) for a model of at most ``FULLRANK_MAX_DIM`` coordinates and ``MULTISTART_MAX_ROWS`` rows
        fitted on all data, else 0 (on a tall data set each path costs hundreds of passes, and the posterior is
        near Gaussian: ``num_paths`` asks for them)."""
        if self.num_paths is not None:
            return self.num_paths
        small = dim <= FULLRANK_MAX_DIM and num_data <= MULTISTART_MAX_ROWS
        return NUM_PATHS if small and self.batch_size is None else 0

    def steps_per_window(self) -> int:
        return self.window or (10 if self.method == "bam" else 100)
