"""The flow on top of the Gaussian fit (``family="flow"``, ``elbo.bbvi.flows``) and the fit that repairs itself
(``repair=True``, ``elbo.bbvi.repair``: the flow, then NUTS in its warped space), on targets with exact answers
(``elbo.bbvi.targets``)."""

import json
import math
import warnings

import pytest
import torch

import elbo
from elbo.bbvi import repair, targets
from elbo.bbvi.methods import CountedDensity, Start
from elbo.bbvi.result import summarize
from helpers import NUM_SE, elbo_in_process


def _quiet_fit(model, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return elbo.fit(model, seed=0, progress=False, **settings)


def test_the_flow_is_the_gaussian_where_the_posterior_is_gaussian():
    """On a correlated Gaussian, batch and match is exact; the flow on it must not lose that: its couplings are
    reset, q is the Gaussian, and importance sampling is exact (k̂ = -inf: the weights are constant)."""
    target = targets.gaussian(4)
    fit = _quiet_fit(target.model, family="flow", num_draws=1000)
    assert fit.config.method == "flow" and "the Gaussian fit" in fit.reason
    assert fit.khat < 0.5
    with torch.no_grad():
        exact = target.model.log_density(fit.z) - fit.q.log_prob(fit.z[:, None])[:, 0]
    assert float(exact.max() - exact.min()) < 1e-6  # q is the target, to round-off


@pytest.mark.slow
def test_the_flow_fits_the_banana_the_gaussian_cannot():
    """z₁ ~ N(0, 1), z₂ | z₁ ~ N(2 (z₁² - 1), 1): mean 0, sds 1 and 3. The Gaussian's k̂ ≥ 0.7; the flow's < 0.7,
    with its PSIS means within NUM_SE standard errors (sd / √ESS with ESS = M / 4, a generous allowance for the
    weights) of the exact ones and sds within 10%."""
    target = targets.banana(2.0)
    gaussian = _quiet_fit(target.model, num_draws=4000)
    flow = _quiet_fit(target.model, family="flow", num_draws=4000)
    assert gaussian.khat >= 0.7 > flow.khat
    summary = flow.summary()
    for key, sd in (("z[0]", 1.0), ("z[1]", 3.0)):
        assert abs(summary[key]["psis_mean"]) < NUM_SE * sd / math.sqrt(1000)
        assert abs(summary[key]["psis_sd"] - sd) < 0.1 * sd


@pytest.mark.slow
def test_neutra_chains_preserve_a_gaussian_target():
    """NUTS in a flow's warped space samples the target: on a Gaussian with known moments, the chains' means are
    within NUM_SE Monte Carlo standard errors (sd / √(bulk ESS)) of the exact ones, and R̂ < 1.05."""
    target = targets.gaussian(3)
    flow = _quiet_fit(target.model, family="flow", num_draws=200)
    start = Start(target.model, flow.config, CountedDensity(target.model), torch.zeros(3), torch.ones(3))
    torch.manual_seed(0)
    fit = repair.neutra(flow, start, num_chains=2, num_draws=200, warmup_steps=150)
    assert fit.mcmc["rhat"] < 1.05 and fit.z.shape == (400, 3)
    exact = summarize(target.sample(200_000))
    for key, row in fit.summary().items():
        se = exact[key]["sd"] / math.sqrt(fit.mcmc["ess_bulk"])
        assert abs(row["mean"] - exact[key]["mean"]) < NUM_SE * se, key
    assert "NeuTra" in fit.reason and fit.diagnostics()["method"] == "neutra"


def test_repair_keeps_a_fit_that_k_hat_vouches_for():
    fit = _quiet_fit(targets.gaussian(3).model, repair=True, num_draws=1000)
    assert type(fit).__name__ == "Fit" and "repair not needed" in fit.reason


def test_repair_fits_the_flow_where_the_gaussian_fails():
    """The banana (curvature 2): the Gaussian's k̂ ≥ 0.7, so repair fits the flow on it, whose k̂ < 0.7; the reason
    says both."""
    fit = _quiet_fit(targets.banana(2.0).model, repair=True, num_draws=4000)
    assert fit.config.family == "flow" and fit.khat < 0.7
    assert "repair: k̂ =" in fit.reason and "the flow's k̂" in fit.reason


def test_repair_must_be_a_bool():
    with pytest.raises(elbo.InputError, match="repair must be True or False, got 'yes'"):
        elbo.fit(targets.gaussian(2).model, repair="yes")


def test_a_missed_mode_is_no_longer_silent():
    """0.3 N(-4, 1) + 0.7 N(4, 1) along z₁: the Gaussian sits on the heavier mode with k̂ ≈ 0; Pathfinder from
    dispersed points finds the other, and fit warns naming both with their weights by importance sampling."""
    with pytest.warns(UserWarning, match=r"several modes.*weight 0\.70 .*misses 1 .*weight 0\.30"):
        elbo.fit(targets.mixture(2).model, seed=0, progress=False, num_draws=1000)


def test_repair_covers_the_missed_modes_with_their_weights():
    """With repair=True, q is the mixture of the Gaussians at both modes; the PSIS-weighted share of draws at each
    mode is within 0.05 of the exact 0.3 and 0.7, and k̂ < 0.7."""
    target = targets.mixture(2)
    fit = _quiet_fit(target.model, repair=True, num_draws=4000)
    weights = targets.mode_weights(fit.z[:, 0], target.mode_centres, fit.psis_log_weights.exp())
    assert fit.khat < 0.7 and "a mixture of q" in fit.reason
    assert weights == pytest.approx(target.mode_weights, abs=0.05)


def test_no_modes_are_reported_on_a_unimodal_posterior():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = elbo.fit(targets.gaussian(4).model, seed=0, progress=False, num_draws=1000)
    assert "several modes" not in fit.reason


def test_elbo_fit_repair_on_the_command_line(tmp_path):
    """``elbo fit --repair`` on the banana: the flow's fit, with the reason saying why, in the JSON."""
    path = tmp_path / "banana.py"
    path.write_text("from elbo.bbvi import targets\nmodel = targets.banana(2.0).model\n")
    result = elbo_in_process("fit", str(path), "--repair", "--num-draws", "1000", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["family"] == "flow" and found["khat"] < 0.7 and found["mcmc"] is None
    assert "repair: k̂ =" in found["reason"]


def test_a_flow_that_missed_a_mode_is_told_so():
    """The search for missed modes works for a flow q too (it has no closed-form mean)."""
    with pytest.warns(UserWarning, match=r"several modes.*misses 1 "):
        elbo.fit(targets.mixture(2).model, family="flow", seed=0, progress=False, num_draws=1000, max_steps=300)
