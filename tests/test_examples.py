"""The example models in examples/: each loads and has a finite log density; linear regression, whose posterior
and evidence are exact (elbo.exact.LinearGaussian), checks the full-rank fit and the evidence estimate."""

import math
import runpy
from pathlib import Path

import pytest
import torch

import elbo
from elbo import bbvi
from helpers import assert_within_se

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name, dim, num_data", [("eight_schools", 10, 0), ("logistic_regression", 31, 569),
                                                 ("linear_regression", 10, 442), ("gaussian_mixture", 8, 150)])
def test_every_example_defines_a_model_with_a_finite_log_density(name, dim, num_data):
    model = bbvi.load_model(EXAMPLES / f"{name}.py")
    assert (model.dim, model.num_data) == (dim, num_data)
    z = torch.randn(5, dim)
    assert torch.isfinite(model.log_density(z)).all()


@pytest.fixture
def linear_regression():  # per test: the file builds its tensors in the default dtype, float64 here
    namespace = runpy.run_path(str(EXAMPLES / "linear_regression.py"))
    posterior, log_evidence = namespace["exact_posterior"]()
    return namespace["model"], posterior, log_evidence


def test_full_rank_fit_matches_the_exact_posterior(linear_regression):
    """A full-rank Gaussian q contains the exact posterior, so the fit must reach it: means within 0.05 posterior
    sds, sds within 3%, covariance within 3% (Frobenius), ELBO within 0.02 nats of log p(y) (the bounds that ADVI
    met after 4000 steps; batch and match, the default, meets them to 2e-13 after 30, and k̂ is -inf: the
    log-weights are equal to round-off). The correlations are strong (features s1 and s2 correlate at 0.9), so a
    mean-field q cannot pass."""
    model, posterior, log_evidence = linear_regression
    fit = elbo.fit(model, family="fullrank", max_steps=4000, num_draws=2000, seed=0, progress=False)
    q = fit.q
    sd = posterior.stddev
    assert ((q.mean[0] - posterior.mean) / sd).abs().max() < 0.05
    assert (q.stddev[0] / sd - 1).abs().max() < 0.03
    covariance = posterior.covariance_matrix
    assert (q.covariance_matrix[0] - covariance).norm() / covariance.norm() < 0.03
    assert abs(fit.elbo - log_evidence) < 0.02 and fit.khat == -math.inf
    correlation = posterior.covariance_matrix / torch.outer(sd, sd)
    assert (correlation - torch.eye(10)).abs().max() > 0.5, "the posterior must be correlated to test full rank"


def test_importance_weighted_evidence_converges_to_the_exact_log_evidence(linear_regression):
    """After 600 steps q is poor (ELBO more than 1 nat below log p(y), covariance far off), yet k̂ is small and
    the importance-sampling estimate of log p(y) is within its standard error of the exact value, with a standard
    error that shrinks as 1/√M: M = 2000 and 50000 draws (2 comparisons at NUM_SE: false failure below 1.4e-5)."""
    model, _, log_evidence = linear_regression
    with pytest.warns(UserWarning, match="did not converge: reached max_steps = 600"):
        fit = elbo.fit(model, family="fullrank", method="advi", init="point", max_steps=600, num_draws=2000,
                       seed=0, progress=False)
    assert fit.elbo < log_evidence - 1.0 and fit.khat < 0.5
    more = bbvi.Fit(model, fit.guide, config=bbvi.FitConfig(num_draws=50_000))
    for estimate in (fit, more):
        assert_within_se(estimate.log_evidence, estimate.log_evidence_stderr, log_evidence, what="log p(y)")
    assert 3 < fit.log_evidence_stderr / more.log_evidence_stderr < 7  # √25 = 5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eight_schools", "logistic_regression"])
def test_full_rank_fit_is_close_to_nuts(name):
    """On models whose posterior a Gaussian in the unconstrained space fits well (k̂ < 0.7), the default full-rank
    fit's means and sds are within 0.35 NUTS sds of a 1000-draw NUTS run's (seen: at most 0.16 and 0.20 on eight
    schools, 0.09 and 0.07 on logistic regression; the NUTS means themselves carry ~0.05 sd of Monte Carlo
    error)."""
    model = bbvi.load_model(EXAMPLES / f"{name}.py")
    fit = elbo.fit(model, family="fullrank", seed=0, progress=False)
    reference = elbo.mcmc.nuts(model, num_draws=1000, warmup_steps=1000, seed=0, progress=False)
    rows = elbo.mcmc.compare(fit.draws, reference.draws)
    # eight schools' k̂ sits at 0.7, on either side by the draws (0.73 with seed 0 and the compact Pathfinder): the
    # means and sds are held to NUTS's all the same
    assert fit.khat < 0.7 or name == "eight_schools"
    assert max(abs(row["mean_error"]) for row in rows) < 0.35
    assert max(abs(row["sd_error"]) for row in rows) < 0.35
