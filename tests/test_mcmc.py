"""The reference NUTS runs Pyro's sampler on the model's unconstrained log density, Jacobian included."""

import math
import sys

import pytest
import torch
from torch.distributions import Gamma, Normal, constraints

import elbo
from elbo import mcmc
from helpers import assert_within_se


def test_nuts_samples_the_constrained_posterior():
    """Gamma(3, 2) on a positive parameter and N(1, 2²) on a real one: the NUTS means match 1.5 and 1 within
    their Monte Carlo standard errors sd / √ESS (ESS by ArviZ). Without the log-Jacobian in the potential the
    positive parameter would have the Gamma(2, 2) distribution, mean 1.0. 2 comparisons at NUM_SE: false failure
    below 1.4e-5."""
    arviz = pytest.importorskip("arviz")
    model = elbo.Model(params={"rate": elbo.Param((), constraints.positive), "loc": elbo.Param(())},
                       log_joint=lambda p: Gamma(3.0, 2.0).log_prob(p["rate"]) + Normal(1.0, 2.0).log_prob(p["loc"]))
    result = mcmc.nuts(model, num_draws=600, warmup_steps=300, seed=0, progress=False)
    assert result.draws["rate"].shape == (600,) and result.num_divergent == 0
    for name, expected in (("rate", 1.5), ("loc", 1.0)):
        draws = result.draws[name]
        ess = float(arviz.ess(draws.numpy()[None]))
        assert_within_se(draws.mean(), draws.std() / ess**0.5, expected, what=f"NUTS mean of {name}")


def test_compare_gives_errors_in_nuts_sds():
    vi = {"a": torch.tensor([1.0, 3.0]), "L": torch.tensor([[[1.0, 0.0], [0.5, 0.8]], [[1.0, 0.0], [0.7, 0.6]]])}
    nuts = {"a": torch.tensor([0.0, 4.0]), "L": torch.tensor([[[1.0, 0.0], [0.4, 0.9]], [[1.0, 0.0], [0.8, 0.5]]])}
    rows = {row["name"]: row for row in mcmc.compare(vi, nuts)}
    a = rows["a"]  # VI mean 2, sd √2; NUTS mean 2, sd 2√2
    assert a["mean_error"] == 0 and abs(a["sd_error"] - (2**0.5 - 8**0.5) / 8**0.5) < 1e-12
    assert abs(rows["L[1,0]"]["mean_error"] - 0.0) < 1e-12
    assert rows["L[0,0]"]["mean_error"] is None and rows["L[0,1]"]["sd_error"] is None  # fixed entries
    assert list(rows) == ["a", "L[0,0]", "L[0,1]", "L[1,0]", "L[1,1]"]


def test_missing_pyro_is_named_with_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyro", None)
    model = elbo.Model(params={"a": elbo.Param(())}, log_joint=lambda p: Normal(0.0, 1.0).log_prob(p["a"]))
    with pytest.raises(ModuleNotFoundError, match=r"the reference NUTS needs pyro, .* pip install 'elbo\[mcmc\]'"):
        mcmc.nuts(model)


def test_bad_settings_are_refused():
    model = elbo.Model(params={"a": elbo.Param(())}, log_joint=lambda p: Normal(0.0, 1.0).log_prob(p["a"]))
    with pytest.raises(ValueError, match="num_draws must be a positive integer, got 0"):
        mcmc.nuts(model, num_draws=0)
    with pytest.raises(ValueError, match=r"init must have shape \(D,\) = \(1,\), got \(2,\)"):
        mcmc.nuts(model, init=torch.zeros(2))


def test_compare_weights_vi_draws():
    """Weights that put all mass on two draws give their mean and (population) sd; uniform weights the plain
    mean and an sd that differs from summarize's only by the M/(M-1) of the unbiased variance."""
    vi = {"a": torch.tensor([0.0, 1.0, 2.0, 3.0])}
    nuts = {"a": torch.tensor([0.0, 2.0])}  # mean 1, sd √2
    rows = mcmc.compare(vi, nuts, vi_weights=torch.tensor([0.5, 0.0, 0.0, 0.5]))
    assert rows[0]["vi_mean"] == 1.5 and rows[0]["vi_sd"] == 1.5
    assert rows[0]["mean_error"] == 0.5 / math.sqrt(2)
    uniform = mcmc.compare(vi, nuts, vi_weights=torch.full((4,), 0.25))[0]
    assert math.isclose(uniform["vi_sd"] ** 2 * 4 / 3, torch.tensor([0.0, 1.0, 2.0, 3.0]).var().item())
