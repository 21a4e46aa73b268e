"""The guards of issue 27: a fit never reports "converged" with an ELBO far below its start's, and Neal's funnel (whose
joint density rises without bound into its neck, where Pathfinder's L-BFGS ends) is fitted from the initial point,
in float64 and in float32."""

import math
import warnings

import pytest
import torch

import elbo
from elbo.bbvi import METHODS, Method, targets
from elbo.bbvi.gaussians import make_guide
from elbo.bbvi.methods import MethodResult, Start


def test_the_funnel_is_not_fitted_at_its_neck():
    """v ~ N(0, 3²): Pathfinder's Gaussian sat at v ≈ -39 with an ELBO of -4e20; from the initial point, q's mean of
    v is within one true sd of 0 and k̂ ≥ 0.7 warns that q is still not the funnel."""
    with pytest.warns(UserWarning, match="k̂ ≥ 0.7"):
        fit = elbo.fit(targets.funnel(10).model, seed=0, progress=False, num_draws=2000)
    assert "the initial point" in fit.reason and "not Pathfinder's Gaussian" in fit.reason
    assert abs(fit.summary()["v"]["mean"]) < 3.0
    assert fit.elbo > -10


def test_the_funnel_in_float32_ends_without_a_traceback():
    """In float32 the neck's gradients overflow (e^39): such draws are left out, and the fit ends."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = elbo.fit(targets.funnel(10).model, family="meanfield", seed=0, progress=False, num_draws=2000,
                       dtype=torch.float32)
    assert math.isfinite(fit.elbo) and abs(fit.summary()["v"]["mean"]) < 3.0


def _collapsed(start: Start) -> MethodResult:
    """A method that ends in the funnel's neck (sds of 1e-10) and claims to have converged."""
    loc = torch.zeros(start.model.dim)
    loc[0] = -39.0
    guide = make_guide(start.config, start.model.dim, loc, torch.full((start.model.dim,), 1e-10))
    return MethodResult(guide, [-4e17] * 30, True, "converged at step 30")


@pytest.fixture
def with_collapsed():
    METHODS.register("collapsed", Method(_collapsed, ("fullrank",)))
    yield
    METHODS.unregister("collapsed")


def test_a_collapsed_fit_is_not_reported_converged(with_collapsed):
    with pytest.warns(UserWarning, match="did not converge: not converged: its ELBO ended at -4e\\+17"):
        fit = elbo.fit(targets.funnel(4).model, method="collapsed", family="fullrank", seed=0, progress=False,
                       num_draws=100)
    assert not fit.converged


def test_a_good_fit_stays_converged():
    """On a Gaussian target the start is Pathfinder's (exact there) and the fit converges."""
    fit = elbo.fit(targets.gaussian(4).model, seed=0, progress=False, num_draws=1000)
    assert fit.converged and "Pathfinder" in fit.reason and "initial point" not in fit.reason
