"""Importance-sampled log-likelihood, bounds and active units, against the linear-Gaussian model's closed forms."""

import math

import pytest
import torch
from torch.distributions import Distribution, MultivariateNormal

from elbo import evaluate, exact
from elbo.vae import VAEConfig, make_vae
from helpers import NUM_SE, assert_within_se


def _model_and_data(num_points=400, seed=1):
    """z ~ N(0, I_2), x | z ~ N(Wz + b, 0.5² I_4), and data drawn from the model."""
    generator = torch.Generator().manual_seed(seed)
    model = exact.LinearGaussian(torch.randn(4, 2, generator=generator), torch.randn(4, generator=generator), 0.5)
    return model, model.marginal().sample((num_points,)).detach()


def _poor_guide(model):
    """An amortized q(z|x): the exact posterior shifted by 0.4 and twice as wide. Its ELBO is well below log p(x)."""
    def guide(x):
        posterior = model.posterior(x)
        return MultivariateNormal(posterior.loc + 0.4, covariance_matrix=4 * posterior.covariance_matrix)
    return guide


class _Replay(Distribution):
    """``q`` whose reparameterized draws come, in order, from a fixed bank of standard normal noise."""

    arg_constraints = {}
    has_rsample = True

    def __init__(self, q, noise):
        self.q, self.noise, self.used = q, noise, 0
        super().__init__(q.batch_shape, q.event_shape, validate_args=False)

    def rsample(self, sample_shape=()):
        count = sample_shape[0]
        eps = self.noise[self.used:self.used + count]
        self.used += count
        return self.q.loc + (self.q.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, z):
        return self.q.log_prob(z)


@torch.no_grad()
def test_chunked_equals_unchunked_with_the_same_samples():
    model, x = _model_and_data(num_points=6)
    noise = torch.randn(1000, 6, 2)
    guide = _poor_guide(model)
    results = [evaluate.iwae_per_point(model, lambda x: _Replay(guide(x), noise), x, 1000, chunk_size=chunk,
                                       batch_size=6) for chunk in (1000, 7, 1)]
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-10)
    torch.testing.assert_close(results[2], results[0], rtol=0, atol=1e-10)
    # and the unchunked value is the IWAE bound written out
    z = guide(x).loc + (guide(x).scale_tril @ noise.unsqueeze(-1)).squeeze(-1)
    log_w = model.prior().log_prob(z) + model.likelihood(z).log_prob(x) - guide(x).log_prob(z)
    torch.testing.assert_close(results[0], torch.logsumexp(log_w, 0) - math.log(1000), rtol=0, atol=1e-10)


def test_the_compiled_log_joint_gives_the_eager_estimate():
    """With compile=True the decoder and the Bernoulli log-likelihood of a VAE run through torch.compile; with the
    same samples (drawn outside the compiled part, from the same seed) L_K agrees to float64 rounding."""
    model = make_vae(VAEConfig(latent_dims=(3,), hidden_dims=((8,),), image_shape=(4, 4), likelihood="bernoulli"))
    x = torch.bernoulli(torch.rand(10, 16))
    estimates = []
    for compile_ in (False, True):
        torch.manual_seed(2)
        estimates.append(evaluate.iwae_per_point(model, model.guide, x, 30, batch_size=4, chunk_size=7,
                                                 compile=compile_))
    torch.testing.assert_close(estimates[1], estimates[0], rtol=1e-12, atol=1e-12)


@torch.no_grad()
def test_with_the_exact_posterior_every_estimate_is_log_p_x():
    """w = p(x, z) / p(z|x) = p(x) for every z: zero variance, for any K and any chunking."""
    model, x = _model_and_data(num_points=20)
    for num_samples, chunk_size in ((1, 1), (50, 7)):
        estimate = evaluate.iwae_per_point(model, model.posterior, x, num_samples, chunk_size=chunk_size,
                                           batch_size=8)
        torch.testing.assert_close(estimate, model.log_evidence(x), rtol=0, atol=1e-9)


@torch.no_grad()
def test_importance_sampling_beats_the_elbo_and_converges_to_log_p_x():
    """For each point, L_K - log p(x) is a noisy estimate of -bias(K) ≤ 0, with bias(1) = KL(q ‖ p(z|x)) and
    bias(K) → 0. Over 400 points: at K = 1 the mean gap matches the exact KL; at K = 5000 it is zero within
    NUM_SE standard errors and the estimate is above the exact ELBO by more than NUM_SE of them. 3 comparisons
    at NUM_SE: false-failure probability below 3 * 6.8e-6."""
    model, x = _model_and_data()
    guide = _poor_guide(model)
    log_p = model.log_evidence(x)
    exact_elbo = exact.exact_elbo(model, guide(x), x)
    gap_1 = evaluate.iwae_per_point(model, guide, x, 1) - log_p
    gap_k = evaluate.iwae_per_point(model, guide, x, 5000, chunk_size=500, batch_size=400) - log_p
    se_1, se_k = gap_1.std() / math.sqrt(len(x)), gap_k.std() / math.sqrt(len(x))
    assert_within_se(gap_1.mean(), se_1, (exact_elbo - log_p).mean(), what="L_1 - log p(x)")
    assert_within_se(gap_k.mean(), se_k, 0.0, what="L_5000 - log p(x)")
    above_elbo = (gap_k + log_p - exact_elbo).mean()
    assert above_elbo > NUM_SE * (gap_k + log_p - exact_elbo).std() / math.sqrt(len(x)), above_elbo
    mean, stderr = evaluate.log_likelihood(model, guide, x, 5000, chunk_size=500, batch_size=400)
    assert abs(mean - float(log_p.mean())) < NUM_SE * math.sqrt(float(se_k) ** 2 + stderr**2)
    assert stderr == pytest.approx(float((gap_k + log_p).std()) / math.sqrt(len(x)), rel=0.05)


@torch.no_grad()
def test_latent_activity_is_the_variance_over_x_of_the_posterior_mean():
    """With q the exact posterior, E_q[z] = m(x) = S Wᵀ (x - b) / σ², so Cov_x(E_q[z]) = S Wᵀ (W Wᵀ + σ² I) W S / σ⁴.
    A zero column of W makes its unit inactive (activity exactly 0). The sample variance over N = 3000 points has
    relative standard error sqrt(2/(N-1)); one comparison at NUM_SE."""
    weight = torch.tensor([[1.0, 0.0], [0.5, 0.0], [-0.3, 0.0]])
    model = exact.LinearGaussian(weight, torch.zeros(3), 0.5)
    x = model.marginal().sample((3000,))
    activity = evaluate.latent_activity(model, model.posterior, x)
    posterior_cov = model.posterior(x[:1]).covariance_matrix[0]
    expected = posterior_cov @ weight.T @ model.marginal().covariance_matrix @ weight @ posterior_cov / 0.5**4
    assert activity[1] == 0
    assert_within_se(activity[0], expected[0, 0] * math.sqrt(2 / 2999), expected[0, 0], what="activity")
    assert evaluate.active_units(model, model.posterior, x) == 1


def test_evaluate_orders_the_bounds_and_counts_units_per_layer():
    """ELBO ≤ L_5 ≤ L_50 ≤ L_500 on average, for an untrained two-layer VAE on binary data; each comparison of
    paired per-image means allows NUM_SE standard errors of slack (3 comparisons)."""
    torch.manual_seed(0)
    model = make_vae(VAEConfig(latent_dims=(3, 2), hidden_dims=((8,), (4,)), image_shape=(3, 3),
                               likelihood="bernoulli"))
    x = torch.rand(200, 9).bernoulli()
    result = evaluate.evaluate(model, x, num_samples=500, iwae_samples=(5, 50))
    assert result["latent_dims"] == [3, 2] and len(result["active_units"]) == 2
    means = [result["elbo"]["mean"], result["iwae"]["5"]["mean"], result["iwae"]["50"]["mean"],
             result["log_likelihood"]["mean"]]
    ses = [result["elbo"]["stderr"], result["iwae"]["5"]["stderr"], result["iwae"]["50"]["stderr"],
           result["log_likelihood"]["stderr"]]
    for lower, higher, se in zip(means, means[1:], ses):
        assert lower <= higher + NUM_SE * se, means


def test_evaluation_refuses_bad_data_and_settings():
    model, x = _model_and_data(num_points=3)
    with pytest.raises(ValueError, match="finite: 1 values are NaN"):
        evaluate.iwae_per_point(model, model.posterior, torch.tensor([[math.nan, 0.0, 0.0, 0.0]]), 5)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        evaluate.iwae_per_point(model, model.posterior, x, 5, chunk_size=0)
