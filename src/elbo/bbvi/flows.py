"""The method ``flow``: the Gaussian fit first, then a RealNVP flow on top of it (issue 27).

The flow (``elbo.families.Flow``: affine couplings on halves of fixed random permutations, a learned diagonal base)
lives in the coordinates ``u`` whitened by the fitted Gaussian ``N(m, L Lᵀ)``, ``z = m + L u``, and each coupling
starts as the identity: the flow starts exactly where the Gaussian ended, and Adam on the ELBO (ADVI's loop,
``elbo.bbvi.methods.advi``, with the sticking-the-landing gradient) bends it from there. Where the flow's ELBO is not
above the Gaussian's by 3 standard errors of their difference, the couplings are reset and q is the Gaussian
itself: the flow never loses what the Gaussian had (on a Gaussian target, batch and match is exact).

The defaults (``FLOW_LAYERS``, ``FLOW_HIDDEN``, ``FLOW_CLAMP`` here; ``FLOW_LR``, ``FLOW_SAMPLES`` in
``elbo.bbvi.config``) were chosen on a sweep of four targets of ``benchmarks/flows.py`` (funnel, banana, Student-t,
Gaussian): 6 couplings of 64 hidden units, log-scales clamped at 3, Adam at 0.005 with 32 draws a step gave the
banana k̂ 0.14, the Student-t 0.42 and the funnel 0.60, where 4 × 32, clamp 1, 0.01 and 16 draws gave 0.58, 0.94
and 0.74.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .. import families
from ..registry import resolve
from .config import FLOW_LR, FLOW_SAMPLES, FULLRANK_MAX_DIM, METHODS
from .guards import elbo_estimate
from .methods import MethodResult, Start

__all__ = ["run", "gaussian_fit", "flow_on", "COMPARE_DRAWS"]

COMPARE_DRAWS = 256  # draws of each q to decide between the flow and the Gaussian
# the flow's couplings (elbo.families.Flow): depth, width of each coupling's network, bound on a step's log-scale
FLOW_LAYERS, FLOW_HIDDEN, FLOW_CLAMP = 6, 64, 3.0


def run(start: Start) -> MethodResult:
    """The Gaussian fit of ``gaussian_fit``, then the flow on top of it (``flow_on``)."""
    gaussian = gaussian_fit(start)
    flowed = flow_on(start, gaussian.guide)
    return dataclasses.replace(flowed, elbo_trace=gaussian.elbo_trace + flowed.elbo_trace,
                               num_dropped=gaussian.num_dropped + flowed.num_dropped,
                               reason=f"{flowed.reason}; the Gaussian under it: {gaussian.reason}")


def gaussian_fit(start: Start) -> MethodResult:
    """``fit``'s default Gaussian from ``start``: batch and match, full rank, up to ``FULLRANK_MAX_DIM`` coordinates
    on all data; ADVI (full rank on minibatches, mean-field above) otherwise."""
    config = start.config
    family = "fullrank" if start.model.dim <= FULLRANK_MAX_DIM else "meanfield"
    method = "bam" if family == "fullrank" and config.batch_size is None else "advi"
    gaussian_config = dataclasses.replace(config, family=family, method=method, num_samples=None, window=None)
    return resolve(METHODS[method].run)(dataclasses.replace(start, config=gaussian_config))


def flow_on(start: Start, gaussian) -> MethodResult:
    """The flow fitted by ADVI's loop in the coordinates whitened by the Gaussian q ``gaussian`` (a guide), and kept
    only where its ELBO beats the Gaussian's (``_keep_better``)."""
    from .methods import advi  # the loop the flow is fitted by

    q = gaussian()
    loc, scale = q.mean[0].detach(), q.variance[0].detach().sqrt()
    # whitened by the whole Cholesky factor of a full-rank q, by the sds of another family (no D × D matrix)
    tril = q.scale_tril[0].detach() if isinstance(q, torch.distributions.MultivariateNormal) else scale
    config = dataclasses.replace(start.config, family="flow", method="advi", lr=start.config.lr or FLOW_LR,
                                 num_samples=start.config.num_samples or FLOW_SAMPLES)
    on_top = dataclasses.replace(start, config=config, loc=loc, scale=scale, origin=f"the Gaussian fit; {start.origin}")
    flow = families.Flow(start.model.dim, num_layers=FLOW_LAYERS, hidden=FLOW_HIDDEN, clamp=FLOW_CLAMP,
                         mask_seed=0, batch_shape=(1,))
    flowed = advi.ascend(on_top, advi.Whitened(start.log_density, loc, tril), flow)
    return _keep_better(start.log_density, flowed, gaussian)


def _keep_better(log_density, flowed: MethodResult, gaussian) -> MethodResult:
    """``flowed``, or its flow reset to the Gaussian under it where the flow's ELBO is not above the Gaussian's by 3
    standard errors (``COMPARE_DRAWS`` draws of each)."""
    flow_elbo, flow_se = elbo_estimate(log_density, flowed.guide(), COMPARE_DRAWS)
    gauss_elbo, gauss_se = elbo_estimate(log_density, gaussian(), COMPARE_DRAWS)
    if flow_elbo - gauss_elbo > 3 * math.hypot(flow_se, gauss_se):
        return dataclasses.replace(flowed, reason=f"a flow on the Gaussian fit, ELBO {flow_elbo:.4g} against the "
                                                  f"Gaussian's {gauss_elbo:.4g}: {flowed.reason}")
    flow = flowed.guide.guide
    flow.reset_couplings()
    with torch.no_grad():
        flow.base.loc.zero_()
        flow.base.log_scale.zero_()
    return dataclasses.replace(flowed, reason=f"the Gaussian fit (the flow's ELBO, {flow_elbo:.4g}, was not above "
                                              f"the Gaussian's, {gauss_elbo:.4g}, so its couplings were reset; it "
                                              f"{flowed.reason})")
