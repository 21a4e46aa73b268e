"""The result of ``elbo.fit``: q with its draws and their diagnostics (``Fit``), and posterior summaries
(``summarize``)."""

from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import torch
from tqdm.auto import tqdm

from .. import bounds
from .._checks import check_fits, check_int_at_least, check_positive, one_of
from .._optional import require
from . import psis
from .config import FitConfig
from .context import default_dtype
from .evidence import ais_evidence
from .model import Model

__all__ = ["Fit", "summarize", "MAX_DRAWS", "MIN_DRAWS"]

MAX_DRAWS = 10_000  # the diagnostics' draws by default
MIN_DRAWS = 1_000  # and the fewest a time or memory budget may cut them to (k̂ needs the tail of the weights)
DRAW_ELEMENTS = 2**24  # draws × D kept by default (128 MiB of float64)


def _most_draws(dim: int) -> int:
    """The diagnostics' draws by default before they are timed: ``MAX_DRAWS``, or as many as ``DRAW_ELEMENTS``
    numbers hold, but never fewer than ``MIN_DRAWS``."""
    return max(MIN_DRAWS, min(MAX_DRAWS, DRAW_ELEMENTS // dim))


def _draws_in_budget(seconds: float, draws: int, budget: float, dim: int = 1) -> int:
    """How many draws the diagnostics take, after ``draws`` of them took ``seconds``: ``_most_draws(dim)`` where
    they fit in ``budget`` seconds, else as many as do, but never fewer than ``MIN_DRAWS``."""
    return max(MIN_DRAWS, min(_most_draws(dim), int(budget / max(seconds / draws, 1e-12))))


def _component_names(name: str, shape: tuple) -> list[str]:
    """``mu`` for a scalar, ``theta[0]``, ..., ``L[1,0]``, ... for the entries of a tensor, in row-major order."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, index))}]" for index in itertools.product(*map(range, shape))]


def summarize(draws: dict, *, quantiles=(0.05, 0.5, 0.95), weights: torch.Tensor | None = None) -> dict:
    """``{component: {"mean", "sd", "5%", "50%", "95%"}}`` over draws ``{name: (n, *shape)}``, one row per scalar
    component of each parameter (``theta[0]``, ...). With normalized ``weights`` of shape ``(n,)`` (PSIS's), the
    weighted mean ``ȳ = Σ w y`` and sd ``(Σ w (y - ȳ)²)^½`` only."""
    rows = {}
    for name, values in draws.items():
        flat = values.detach().reshape(values.shape[0], -1).double()
        if weights is None:
            stats = {"mean": flat.mean(0), "sd": flat.std(0)}
            stats |= {f"{100 * q:g}%": flat.quantile(q, dim=0) for q in quantiles}
        else:
            w = weights.detach().double()
            mean = w @ flat
            stats = {"mean": mean, "sd": (w @ (flat - mean) ** 2).sqrt()}
        for i, component in enumerate(_component_names(name, tuple(values.shape[1:]))):
            rows[component] = {key: value[i].item() for key, value in stats.items()}
    return rows


@dataclass(eq=False)
class Fit:
    """q fitted to a model's posterior, with ``num_draws`` draws of q and their diagnostics.

    ``log_weights`` are ``log w_s = log p(x, z_s) - log q(z_s)`` for the draws ``z_s ~ q`` (all data, no
    subsampling); from them:

    - ``elbo``: their mean, the ELBO of the final q (a float);
    - ``log_evidence``: ``log (1/M) Σ_s w_s``, the importance-sampling estimate of ``log p(x)`` (up to whatever
      constants ``log_joint`` leaves out), biased low by about ``var(w) / (2 M E[w]²)``; ``log_evidence_stderr``:
      its standard error by the delta method, ``sd(w) / (√M · mean(w))`` (meaningful only when k̂ < 0.7: with
      heavier tails the variance of w is infinite);
    - ``khat``: the PSIS k̂ (Yao et al. 2018; ``elbo.psis.psis``): below 0.7 the PSIS-reweighted estimates
      (``psis_mean``, ``psis_sd``, the ``psis_*`` columns of ``summary()``) are usable and are the ones to report;
      at 0.7 or above nothing computed from q's draws is;
    - ``reason``: one line saying why the fit stopped and where it started; ``num_grad_evals``: the log-density
      gradients it took (one per draw); ``num_dropped``: draws at which ``log p`` was NaN or -inf, left out of the
      ELBO estimates; ``seconds``: its wall time, diagnostics excluded; ``diagnostics_seconds``: theirs, all data
      at each of the ``num_draws`` draws (``None``: 10,000 draws, or as many as ``diagnostics_seconds`` allows
      where the data make each draw slow and 2²⁴ numbers hold where D is large, at least 1,000; ``khat_stderr``
      says what that costs k̂).
    Draws at which ``log p`` is not finite get weight 0 (``log w = -inf``); ``num_nonfinite_draws`` counts them.
    """

    model: Model = field(repr=False)
    guide: torch.nn.Module = field(repr=False)
    config: FitConfig = field(default_factory=FitConfig)
    elbo_trace: list = field(default_factory=list, repr=False)
    converged: bool = False
    seconds: float = math.nan
    reason: str = ""
    num_grad_evals: int = 0
    num_dropped: int = 0
    z: torch.Tensor = field(init=False, repr=False)
    log_weights: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        clock = time.perf_counter()
        dim = self.model.dim
        most = self.config.num_draws or _most_draws(dim)
        # the draws, constrained and not, and their log-weights, before the first is drawn
        check_fits(3 * most * dim * 8, "cpu", what=f"the diagnostics' {most} draws of D = {dim}",
                   argument="num_draws", remedy="lower num_draws (k̂ needs at least a few hundred)")
        # in q's dtype: the model's own tensors (its data) are in it, and float64 draws would meet float32 data in
        # operations that do not promote (a matrix product)
        with torch.no_grad(), default_dtype(self.config.dtype), tqdm(
                total=most, desc="diagnostics: draws of q on all data", disable=not self.config.progress,
                leave=False) as bar:
            target, done, log_w, z = most, 0, None, None
            while done < target:
                # the model's chunks of rows bound the memory of an (M, N) log-likelihood; the draws go in two
                # chunks (100 to time them where num_draws is left to the budget, then the rest), each a pass
                size = min(100, target) if done == 0 and self.config.num_draws is None else target - done
                chunk_log_w, chunk_z = bounds.log_weights(self.model, self.guide, self.model.data_indices(), size,
                                                          validate_args=False)
                if self.config.num_draws is None and done == 0:
                    target = _draws_in_budget(time.perf_counter() - clock, size, self.config.diagnostics_seconds,
                                              dim)
                    bar.total = target
                if z is None:  # the (M, D) draws filled in place: no list of chunks to copy from
                    log_w, z = chunk_log_w.new_empty(target), chunk_z.new_empty(target, dim)
                log_w[done:done + size], z[done:done + size] = chunk_log_w[:, 0], chunk_z[:, 0]
                done += size
                bar.update(size)
        self.log_weights = torch.where(torch.isnan(log_w), -math.inf, log_w)  # (M,)
        self.z = z  # (M, D)
        self.diagnostics_seconds = time.perf_counter() - clock

    def warn(self) -> None:
        """The warnings ``fit`` gives: not converged, k̂ ≥ 0.7, log p not finite at more than 1% of the draws."""
        if not self.converged and self.config.method != "pathfinder":
            warnings.warn(f"elbo.fit did not converge: {self.reason}; raise max_steps, or check k̂ "
                          f"({self.khat:.2f}) before using q", stacklevel=3)
        if not self.khat < psis.KHAT_THRESHOLD:
            warnings.warn(psis.khat_meaning(self.khat), stacklevel=3)
        num_nonfinite = self.num_nonfinite_draws
        if num_nonfinite > 0.01 * len(self.log_weights):
            warnings.warn(f"log p is NaN or -inf at {num_nonfinite} of {len(self.log_weights)} draws of q: q puts "
                          f"mass where the model has none", stacklevel=3)

    @property
    def num_nonfinite_draws(self) -> int:
        return int((~torch.isfinite(self.log_weights)).sum())

    @property
    def q(self):
        """q over the unconstrained ``z``: batch shape ``(1,)``, event shape ``(D,)``."""
        return self.guide()

    @property
    def num_steps(self) -> int:
        return len(self.elbo_trace)

    @cached_property
    def draws(self) -> dict:
        """The ``num_draws`` draws of q, constrained: ``{name: (M, *shape)}``."""
        return self.model.constrain(self.z)

    def sample(self, n: int) -> dict:
        """``n`` fresh draws of q in the constrained space: ``{name: (n, *param.shape)}``."""
        check_int_at_least("n", n, 1)
        with torch.no_grad():
            return self.model.constrain(self.q.sample((n,))[:, 0])

    @property
    def _finite_log_weights(self) -> torch.Tensor:
        return self.log_weights[torch.isfinite(self.log_weights)]

    @property
    def elbo(self) -> float:
        return self._finite_log_weights.mean().item() if self.num_nonfinite_draws == 0 else -math.inf

    @property
    def log_evidence(self) -> float:
        return (torch.logsumexp(self.log_weights, 0) - math.log(len(self.log_weights))).item()

    @property
    def log_evidence_stderr(self) -> float:
        w = (self.log_weights - self.log_weights.max()).exp()  # rescaled: the ratio sd/mean does not change
        return (w.std() / (math.sqrt(len(w)) * w.mean())).item()

    @cached_property
    def _psis(self):
        finite = torch.isfinite(self.log_weights)
        smoothed, khat = psis.psis(self.log_weights[finite])
        log_w = torch.full_like(self.log_weights, -math.inf)
        log_w[finite] = smoothed
        return log_w, khat

    @property
    def khat(self) -> float:
        """PSIS k̂ of the log-weights: < 0.7, the PSIS-reweighted estimates are usable (``elbo.psis``)."""
        return self._psis[1]

    @cached_property
    def khat_stderr(self) -> float:
        """The Monte Carlo standard error of k̂: the sd of k̂ over 50 bootstrap resamples of the draws (seeded, so
        the same fit gives the same number). It says whether k̂ is on one side of 0.7 or could be on either."""
        finite = self.log_weights[torch.isfinite(self.log_weights)]
        generator = torch.Generator().manual_seed(0)
        resampled = [psis.psis(finite[torch.randint(len(finite), (len(finite),), generator=generator)])[1]
                     for _ in range(50)]
        return float(torch.tensor(resampled, dtype=torch.float64).std())

    @property
    def psis_log_weights(self) -> torch.Tensor:
        """Pareto-smoothed, self-normalized log-weights of the draws, shape ``(M,)``."""
        return self._psis[0]

    @property
    def psis_mean(self) -> dict:
        """``Σ_s w̃_s y_s`` with the smoothed normalized weights w̃: ``{name: tensor of param.shape}``."""
        weights = self.psis_log_weights.exp()
        return {name: torch.tensordot(weights, values, dims=1) for name, values in self.draws.items()}

    @property
    def psis_sd(self) -> dict:
        """``(Σ_s w̃_s (y_s - ȳ)²)^½`` about the PSIS mean ȳ: ``{name: tensor of param.shape}``."""
        weights, means = self.psis_log_weights.exp(), self.psis_mean
        return {name: torch.tensordot(weights, (values - means[name]) ** 2, dims=1).sqrt()
                for name, values in self.draws.items()}

    def summary(self, *, quantiles=(0.05, 0.5, 0.95)) -> dict:
        """Per scalar component, q's own mean, sd and quantiles, and the PSIS-reweighted ``psis_mean`` and
        ``psis_sd`` (the estimates to report when k̂ < 0.7): ``{"theta[0]": {"mean": ..., "psis_mean": ...}}``."""
        rows = summarize(self.draws, quantiles=quantiles)
        reweighted = summarize(self.draws, weights=self.psis_log_weights.exp())
        return {component: row | {"psis_mean": reweighted[component]["mean"], "psis_sd": reweighted[component]["sd"]}
                for component, row in rows.items()}

    def diagnostics(self) -> dict:
        """The numbers that say whether to trust q: k̂ and its meaning, convergence and why it stopped, the ELBO,
        the log evidence and its standard error, evaluations, wall time, dropped and non-finite draws."""
        return {"khat": self.khat, "khat_meaning": psis.khat_meaning(self.khat), "converged": self.converged,
                "reason": self.reason, "method": self.config.method, "family": self.config.family,
                "elbo": self.elbo, "log_evidence": self.log_evidence, "log_evidence_stderr": self.log_evidence_stderr,
                "num_steps": self.num_steps, "num_grad_evals": self.num_grad_evals, "seconds": self.seconds,
                "num_dropped": self.num_dropped, "num_nonfinite_draws": self.num_nonfinite_draws,
                "num_draws": len(self.log_weights), "diagnostics_seconds": self.diagnostics_seconds}

    def evidence(self, method: str = "is", *, num_steps: int = 1000, num_chains: int = 16, num_leapfrog: int = 10,
                 progress: bool | None = None) -> dict:
        """``log p(x)`` with its standard error, ``{"method", "log_evidence", "stderr", "ess", ...}``. ``"is"``:
        importance sampling with q's draws (``log_evidence``, ``log_evidence_stderr``; ESS of their weights);
        ``"ais"``: annealed importance sampling from q in ``num_steps`` steps of ``num_leapfrog`` leapfrog steps,
        ``num_chains`` chains (``elbo.bbvi.evidence``), far better where q is poor (k̂ ≥ 0.7); both are stochastic
        lower bounds, the log of unbiased estimates of p(x). ``progress``: ``None``, the fit's setting."""
        one_of("method", method, ("is", "ais"))
        check_positive(num_steps=num_steps, num_chains=num_chains, num_leapfrog=num_leapfrog)
        if method == "is":
            ess = 1 / torch.softmax(self.log_weights.double(), 0).square().sum()
            return {"method": "is", "log_evidence": self.log_evidence, "stderr": self.log_evidence_stderr,
                    "ess": float(ess), "num_draws": len(self.log_weights)}
        return ais_evidence(self, num_steps=num_steps, num_chains=num_chains, num_leapfrog=num_leapfrog,
                            progress=self.config.progress if progress is None else progress)

    def to_arviz(self):
        """The draws as an ArviZ ``InferenceData`` (one chain), with the log-weights and the PSIS log-weights in
        ``sample_stats`` and ``diagnostics()`` in its ``attrs``."""
        arviz = require("arviz", extra="mcmc", feature="Fit.to_arviz()")
        attrs = {key: (value if isinstance(value, (int, float, str)) else str(value))
                 for key, value in self.diagnostics().items()}
        attrs = {key: int(value) if isinstance(value, bool) else value for key, value in attrs.items()}
        return arviz.from_dict(posterior={name: values[None].numpy() for name, values in self.draws.items()},
                               sample_stats={"log_weight": self.log_weights[None].numpy(),
                                             "psis_log_weight": self.psis_log_weights[None].numpy()},
                               attrs=attrs)
