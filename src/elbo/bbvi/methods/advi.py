"""The method ``advi``: stochastic-gradient ascent on the ELBO (ADVI, Kucukelbir et al. 2017) with Adam, for every
family and for minibatches: in coordinates whitened by the starting Gaussian, with iterate averaging over the last
window, and restarts with half the learning rate where a step breaks down."""

from __future__ import annotations

import copy
import math

import torch
from tqdm.auto import tqdm

from ... import bounds, estimators, families
from ...errors import InputError
from ..config import ADVI_SAMPLES, FitConfig
from ..control_variate import ControlVariate
from ..gaussians import NumericalError, check_gaussian, make_guide
from ..model import Model
from ..stopping import has_converged
from . import CountedDensity, MethodResult, Start

__all__ = ["run", "ascend", "Whitened", "MIN_SCALE"]


def run(start: Start) -> MethodResult:
    """Adam on the ELBO with Robbins–Monro step sizes, in coordinates whitened by the starting Gaussian
    (``Whitened``); every window, q's Gaussian is checked (``check_gaussian``) and saved; a broken step or an ELBO
    far above every value seen restarts from the last saved state with half the learning rate, three times at
    most. q is the average of its parameters over the last window."""
    return ascend(start, *_whitened_guide(start.config, start))


def ascend(start: Start, whitened: Whitened, guide) -> MethodResult:
    """``run``'s loop for q ``guide`` over the coordinates ``whitened`` (a ``Whitened``; the method ``flow`` gives
    its own flow)."""
    model, config = start.model, start.config
    window = config.steps_per_window()
    num_samples = config.num_samples or ADVI_SAMPLES
    counted = _CountedModel(model, whitened)
    adam = _RestartableAdam(guide, config)
    trace, average, num_dropped, restarts, anchored = [], None, 0, 0, 0
    converged, reason = False, f"reached max_steps = {config.max_steps}"
    with tqdm(total=config.max_steps, desc=f"fit {config.family}", disable=not config.progress, leave=False) as bar:
        step = 0
        while step < config.max_steps:
            x = model.data_indices(config.batch_size)
            elbo, dropped = _elbo_step(counted, guide, config, x, num_samples)
            num_dropped += dropped
            broken, message = _broken_step(elbo, trace, window, guide, step)
            if broken:
                restarts += 1
                _check_restart(elbo, message, restarts, step, num_samples)
                step = adam.restore_with_half_lr()
                trace = trace[:step]
                continue
            trace.append(elbo.item())
            adam.ascend(elbo)
            step += 1
            bar.update()
            average = _running_average(average, guide, step, window)
            if step % window == 0:
                adam.save(step)
                bar.set_postfix(elbo=f"{sum(trace[-window:]) / window:.4g}")
                if whitened.moved_anchor(guide):  # a new control variate: the window rule starts afresh
                    anchored = step
                    continue
                if has_converged(trace[anchored:], window):
                    converged, reason = True, f"converged at step {step}: the ELBO estimate stopped improving"
                    break
    if average is not None:
        with torch.no_grad():
            for p, a in zip(guide.parameters(), average):
                p.copy_(a)
    return MethodResult(whitened.unwhiten(guide, config.family), trace, converged, reason, num_dropped)


def _whitened_guide(config: FitConfig, start: Start):
    """ADVI's coordinates ``u`` (``Whitened``) and q in them: the starting Gaussian mapped into them is N(0, I).
    On minibatches, the log density is estimated with the log-likelihood's expansion at the start's mean as a
    control variate (``ControlVariate``)."""
    density = start.log_density if config.batch_size is None else ControlVariate(start.log_density, start.loc)
    # a full-rank q is whitened by the whole Cholesky factor (the product of two is one), the others by its sds
    whitened = Whitened(density, start.loc, start.scale_of(config.family))
    guide = make_guide(config, start.model.dim, torch.zeros_like(start.loc), torch.ones_like(start.loc),
                       min_scale=MIN_SCALE, model=start.model)
    if isinstance(density, ControlVariate) and isinstance(getattr(guide, "loc", None), torch.Tensor):
        # the expansion's pass gave the full-data gradient at the start: a Newton step with the start's covariance
        # (in u, where that is I) moves q's mean to near the mode of all rows when the start saw a subsample
        _, prior_grad = start.model.value_and_grad(start.loc[None], part="prior")
        step = whitened.grad_in_u(density.grad + prior_grad[0])
        with torch.no_grad():
            guide.loc.copy_(step.reshape(guide.loc.shape))
    return whitened, guide


class _RestartableAdam:
    """ADVI's Adam with Robbins–Monro step sizes, and the state (q's and Adam's) saved to restart from."""

    def __init__(self, guide, config: FitConfig):
        self.guide = guide
        self.optimizer = torch.optim.Adam(guide.parameters(), lr=config.adam_lr())
        # Robbins–Monro step sizes: their sum diverges, the sum of their squares does not
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                          lambda t: 1 / (1 + t / config.lr_decay_steps))
        self.save(0)

    def save(self, step: int) -> None:
        self.saved = (copy.deepcopy(self.guide.state_dict()), copy.deepcopy(self.optimizer.state_dict()), step)

    def ascend(self, elbo: torch.Tensor) -> None:
        """One step up the ELBO estimate (down its negative), and the schedule's step."""
        self.optimizer.zero_grad()
        (-elbo.mean()).backward()
        self.optimizer.step()
        self.schedule.step()

    def restore_with_half_lr(self) -> int:
        """Back to the saved state with half the learning rate from its first step on; returns the saved step."""
        guide_state, optimizer_state, step = self.saved
        self.guide.load_state_dict(guide_state)
        self.optimizer.load_state_dict(optimizer_state)  # which also brings back the learning rate it had then
        self.schedule.base_lrs = [lr / 2 for lr in self.schedule.base_lrs]
        for group in self.optimizer.param_groups:
            group["lr"] /= 2
        return step


def _broken_step(elbo, trace: list, window: int, guide, step: int) -> tuple[bool, str | None]:
    """Whether ADVI's step broke, and the message of the check that found it (``None``: the estimate itself). An
    estimate that is missing (no finite draw), not finite, or far above every one seen is broken: that is round-off,
    not progress (more than |best| + 10 nats above the best, and 10 times the last window's spread); at the end of
    a window, q's Gaussian is checked too (``check_gaussian``)."""
    if elbo is None or not math.isfinite(elbo.item()):
        return True, None
    if trace and elbo.item() > max(trace) + abs(max(trace)) + 10 * (max(trace[-window:]) - min(trace[-window:])) + 10:
        return True, None
    if (step + 1) % window == 0:
        try:
            check_gaussian(guide, step)
        except NumericalError as error:
            return True, str(error)
    return False, None


def _check_restart(elbo, message: str | None, restarts: int, step: int, num_samples: int) -> None:
    """Raise where a broken ADVI step cannot be taken again: no finite draw at all, or a fourth restart."""
    if elbo is None:
        raise InputError(f"the log density is NaN or inf at all {num_samples} draws of q at step "
                         f"{step}: check log_joint and the constraints, or lower lr")
    if restarts > 3:
        raise NumericalError(message or (
            f"the ELBO estimate broke down at step {step} ({elbo.item():.4g}) after 3 restarts with "
            f"smaller steps: check the model's scales, or use method='bam'"))


def _running_average(average, guide, step: int, window: int):
    """q's parameters averaged over the steps of this window so far (iterate averaging), after ``step`` steps."""
    params = [p.detach().clone() for p in guide.parameters()]
    return params if step % window == 1 or window == 1 else [
        a + (p - a) / ((step - 1) % window + 1) for a, p in zip(average, params)]


MIN_SCALE = 1e-6  # the floor of a full-rank factor's diagonal in ADVI's whitened coordinates
ANCHOR_DISTANCE = 0.5  # starting sds between q's mean and the control variate's point that move the point


class Whitened:
    """The log density of ``u`` with ``z = loc + L u``: ``log p(loc + L u) + log |det L|``, for lower-triangular L
    (``(D, D)``) or a diagonal one given by its diagonal (``(D,)``: no ``D × D`` matrix for a large model).

    ADVI runs in these coordinates, with the starting Gaussian's mean and Cholesky factor (Pathfinder's; for the
    families other than full rank, only its sds): Adam moves every parameter by about its learning rate at first,
    whatever its gradient's size, so in z's own units a step of 0.1 is nothing for a parameter whose posterior sd
    is 100 and a catastrophe for one whose sd is 0.001 (diamonds: the first step from Pathfinder's q gave an ELBO
    of 1e36), and a correlated posterior is a ridge that stochastic gradients crawl along. The map keeps each
    family's form (a product of lower-triangular factors is one), so q is mapped back exactly (``unwhiten``)."""

    def __init__(self, log_density, loc: torch.Tensor, scale_tril: torch.Tensor):
        self.log_density, self.loc, self.scale_tril = log_density, loc, scale_tril
        self.diagonal = scale_tril.dim() == 1
        self.log_det = (scale_tril if self.diagonal else torch.diagonal(scale_tril)).log().sum()
        self.anchor = torch.zeros_like(loc)  # the control variate's point, in u (the start's mean: u = 0)

    def grad_in_u(self, grad_z: torch.Tensor) -> torch.Tensor:
        """Gradients ``∇_z log p`` (``(D,)`` or ``(S, D)``) as ones in u: ``Lᵀ ∇_z`` (the chain rule of
        ``z = loc + L u``)."""
        return grad_z * self.scale_tril if self.diagonal else grad_z @ self.scale_tril

    def moved_anchor(self, guide) -> bool:
        """On minibatches, where q's mean has moved more than ``ANCHOR_DISTANCE`` starting sds (in u, the root mean
        square over the coordinates) from the control variate's point, move the point to it (a pass over all rows)
        and say so: the estimates' noise grows with the square of that distance, and a start found on a subsample of
        the rows can be several posterior sds from the mode. (The largest coordinate's distance moved the point
        every window on a 100-dimensional regression of 10^7 rows: a pass each.)"""
        if not isinstance(self.log_density, ControlVariate) or not isinstance(getattr(guide, "loc", None),
                                                                              torch.Tensor):
            return False
        u = guide.loc.detach().reshape(-1)
        if (u - self.anchor).square().mean().sqrt() <= ANCHOR_DISTANCE:
            return False
        self.anchor = u.clone()
        self.log_density = ControlVariate(self.log_density.density, self._z(u))
        return True

    def _z(self, u: torch.Tensor) -> torch.Tensor:
        return self.loc + (u * self.scale_tril if self.diagonal else u @ self.scale_tril.T)

    def __call__(self, u: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        return self.log_density(self._z(u), indices) + self.log_det

    def value_and_grad(self, u: torch.Tensor, indices: torch.Tensor | None = None):
        """The log density of ``u`` and its gradient ``∇_z log p · ∂z/∂u``, by the density's own chunked pass."""
        value, grad = self.log_density.value_and_grad(self._z(u), indices)
        return value + self.log_det, self.grad_in_u(grad)

    def unwhiten(self, guide, family: str):
        """The same q as a distribution over ``z``, in the same family."""
        loc, tril = self.loc, self.scale_tril
        scale = tril if self.diagonal else torch.diagonal(tril)
        with torch.no_grad():
            if family == "flow":  # the flow over u on top of the whitening Gaussian
                return _Shifted(guide, loc, tril)
            if family == "hierarchical":  # whitened by its sds (a diagonal map)
                guide.scale_(loc, scale)
                return guide
            guide.loc.copy_(self._z(guide.loc))
            if family == "meanfield":
                guide.log_scale.add_(scale.log())
            elif family == "fullrank":
                product = tril @ guide.scale_tril[0]
                guide.min_scale = 0.0  # the floor is in u's units; in z's, the factor is the product
                guide.log_diag.copy_(torch.diagonal(product).log()[None])
                guide.off_diag.copy_(product.tril(-1)[None])
            else:  # lowrank: N(loc, F Fᵀ + diag(exp(log_diag)))
                guide.cov_factor.mul_(scale[:, None])
                guide.log_diag.add_(2 * scale.log())
        return guide


class _Shifted(torch.nn.Module):
    """A flow over ``u`` as a distribution over ``z = loc + L u`` (``L``: a Cholesky factor, or sds)."""

    def __init__(self, guide, loc: torch.Tensor, scale_tril: torch.Tensor):
        super().__init__()
        self.guide = guide
        self.register_buffer("loc", loc)
        self.register_buffer("scale_tril", scale_tril)

    def forward(self, x=None):
        return torch.distributions.TransformedDistribution(
            self.guide(), [families.TriangularAffine(self.loc, self.scale_tril)])


class _CountedModel:
    """``model`` as ``elbo.bounds`` sees it (``log_prob(x, z)``), through the counting log density."""

    def __init__(self, model: Model, log_density: CountedDensity):
        self.model, self.log_density = model, log_density

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.log_density(z[:, 0], self._indices(x)).unsqueeze(1)

    def pathwise_log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log_prob(x, z)`` as a value whose gradient with respect to whatever ``z`` was drawn from is the pathwise
        one, ``∇_z log p · ∂z/∂φ``, with ``∇_z log p`` from the density's own pass over the data by chunks of rows:
        the graph of a full-data log-likelihood is never held whole."""
        value, grad = self.log_density.value_and_grad(z[:, 0].detach(), self._indices(x))
        # a draw whose value or gradient is not finite (a gradient that overflows float32 in a funnel's neck) is
        # left out of the estimate (NaN), and gives no gradient
        finite = torch.isfinite(value) & torch.isfinite(grad).all(1)
        value, grad = torch.where(finite, value, torch.nan), torch.where(finite[:, None], grad, 0.0)
        # z - z.detach() is zero in value and carries z's gradient: the product's gradient is grad · ∂z/∂φ
        return (value + ((z[:, 0] - z[:, 0].detach()) * grad).sum(-1)).unsqueeze(1)

    def _indices(self, x: torch.Tensor) -> torch.Tensor | None:
        return None if self.model.log_joint is not None else x[0]


def _elbo_step(model_density, guide, config: FitConfig, x: torch.Tensor, num_samples: int):
    """The ELBO estimate of one ADVI step, its surrogate's gradient by the estimator, and the number of draws at
    which ``log p`` was NaN or -inf (left out of the estimate, as Stan does)."""
    q = guide()
    if config.estimator == "score":
        return bounds.elbo(model_density, guide, x, num_samples, form="entropy", estimator="score",
                           validate_args=False), 0
    z = q.rsample((num_samples,))  # (K, 1, D)
    log_p = model_density.pathwise_log_prob(x, z)[:, 0]
    # STL: q's parameters cut from log q, leaving only the pathwise term (Roeder et al. 2017)
    log_q = (estimators.stop_gradient(q) if config.estimator == "stl" else q).log_prob(z)[:, 0]
    finite = torch.isfinite(log_p)
    if not bool(finite.any()):
        return None, num_samples
    log_w = torch.where(finite, log_p - log_q, torch.zeros_like(log_p))
    return (log_w.sum() / finite.sum()).unsqueeze(0), int((~finite).sum())
