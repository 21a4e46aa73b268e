"""The guards of issue 27: a fit never reports "converged" with an ELBO far below its start's, and Neal's funnel (whose
joint density rises without bound into its neck, where Pathfinder's L-BFGS ends) is fitted from the initial point,
in float64 and in float32."""

import math
import warnings

import pytest
import torch
from torch.distributions import Normal

import elbo
from elbo.bbvi import METHODS, Method, hints, targets
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


def test_advi_leaves_out_a_draw_whose_gradient_is_not_finite():
    """A finite log density whose gradient overflowed (float32 in a funnel's neck): the draw is left out of ADVI's
    estimate (NaN) and gives no gradient, where its inf gradient made q's parameters NaN."""
    from elbo.bbvi.methods.advi import _CountedModel

    class Overflowing:
        def value_and_grad(self, z, indices=None):
            grad = torch.ones_like(z)
            grad[1] = math.inf
            return torch.zeros(z.shape[0]), grad

    model = targets.gaussian(2).model
    loc = torch.zeros(2, requires_grad=True)
    z = (loc + torch.randn(3, 1, 2))  # (K, 1, D), a path to loc
    value = _CountedModel(model, Overflowing()).pathwise_log_prob(model.data_indices(), z)[:, 0]
    assert torch.isnan(value[1]) and bool(torch.isfinite(value[[0, 2]]).all())
    (grad,) = torch.autograd.grad(value[[0, 2]].sum(), loc)
    torch.testing.assert_close(grad, torch.full((2,), 2.0))  # the two finite draws' gradients, 1 each


def _funnel(centred: bool):
    """Neal's funnel in d = 6, centred (x ~ N(0, e^{v/2})) or its non-centred twin (x_raw ~ N(0, 1))."""
    def log_joint(p):
        scale = (p["v"] / 2).exp()[:, None] if centred else 1.0
        return Normal(0.0, 3.0).log_prob(p["v"]) + Normal(0.0, scale).log_prob(p["x"]).sum(-1)

    return elbo.Model(params={"v": elbo.Param(()), "x": elbo.Param((5,))}, log_joint=log_joint)


def test_the_reparameterisation_hint_fires_on_a_centred_funnel_and_not_on_its_twin():
    """On the centred funnel, k̂ ≥ 0.7 and the log-curvature of x falls by 1 per unit of v: the warning names x and
    v and the non-centred form. The non-centred twin is a Gaussian: no hint (and no k̂ warning)."""
    with pytest.warns(UserWarning, match=r"the scale of x follows v .* non-centred form"):
        elbo.fit(_funnel(True), seed=0, progress=False, num_draws=1000, num_paths=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        elbo.fit(_funnel(False), seed=0, progress=False, num_draws=1000, num_paths=0)
    assert hints.funnel_hint(_funnel(False), torch.zeros(6)) is None
