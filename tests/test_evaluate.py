"""Importance-sampled log-likelihood, bounds, active units and ELBO surgery, against closed forms (the linear-Gaussian
model) and quadrature."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

from elbo import evaluate, exact, surgery
from elbo.models.images.config import VAEConfig
from elbo.models.images.model import make_vae
from helpers import NUM_SE, assert_within_se, linear_gaussian


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
    with pytest.raises(ValueError, match="finite: 1 of its 4 values are NaN"):
        evaluate.iwae_per_point(model, model.posterior, torch.tensor([[math.nan, 0.0, 0.0, 0.0]]), 5)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        evaluate.iwae_per_point(model, model.posterior, x, 5, chunk_size=0)


# --- ELBO surgery ------------------------------------------------------------------------------------------------

def _diagonal_posterior_model(num_points=6):
    """A linear-Gaussian model whose posterior is diagonal, N points drawn from it, and the exact posterior as an
    amortized guide: q(z|x_n) = p(z|x_n) = N(m_n, diag(s²)), the same s for every n."""
    model, _ = linear_gaussian(latent_dim=2, data_dim=3, diagonal_posterior=True, seed=3)
    x = model.marginal().sample((num_points,)).detach()

    def guide(x):
        posterior = model.posterior(x)
        return Independent(Normal(posterior.loc, posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()), 1)
    return model, x, guide


def _gauss_hermite_expectations(loc, scale, f, nodes=40):
    """E_n E_{N(loc_n, diag scale_n²)}[f(z)] for 2-D z by a product Gauss–Hermite rule; f maps (N, G, 2) -> (N, G)."""
    t, w = np.polynomial.hermite.hermgauss(nodes)
    t, w = torch.as_tensor(t) * math.sqrt(2), torch.as_tensor(w) / math.sqrt(math.pi)
    e_1, e_2 = torch.meshgrid(t, t, indexing="ij")
    eps = torch.stack([e_1.reshape(-1), e_2.reshape(-1)], -1)  # (G, 2)
    z = loc[:, None, :] + scale[:, None, :] * eps  # (N, G, 2)
    return float((f(z) * (w[:, None] * w[None, :]).reshape(-1)).sum(1).mean())


@torch.no_grad()
def test_surgery_matches_quadrature_with_the_exact_posterior_as_encoder():
    """Six points, the exact (diagonal) posterior as q(z|x_n): the aggregate posterior is a mixture of six Gaussians
    whose MI, marginal KL, total correlation and dimension-wise KL are computed here independently, by Gauss–Hermite
    quadrature (40² nodes per point, converged to 1e-6) with torch's MixtureSameFamily as the density. The
    reconstruction has a closed form, E_q[log N(x; Wz + b, σ²I)] = log N(x; Wm + b, σ²I) - tr(W S Wᵀ) / 2σ², the
    KL too, and with the exact posterior every ELBO sample is log p(x_n), so reconstruction - MI - marginal KL is
    the average log p(x) to rounding. 4000 draws per point; 6 comparisons at NUM_SE standard errors (Monte Carlo
    error given the data set): false-failure probability below 6 * 6.8e-6."""
    model, x, guide = _diagonal_posterior_model()
    loc, scale = guide(x).base_dist.loc, guide(x).base_dist.scale
    result = surgery.elbo_surgery(model, guide, x, num_samples=4000, dimension_samples=4000 * len(x))
    assert result["num_points"] == 6 and result["dimension_samples"] == 24000
    assert result["standard_errors"] == "Monte Carlo error given the data set"
    mixture = MixtureSameFamily(Categorical(torch.ones(6)), Independent(Normal(loc, scale), 1))
    marginals = [MixtureSameFamily(Categorical(torch.ones(6)), Normal(loc[:, j], scale[:, j])) for j in range(2)]

    def log_q(z):
        return mixture.log_prob(z.reshape(-1, 2)).reshape(z.shape[:-1])

    def log_q_marginals(z):
        return torch.stack([m.log_prob(z[..., j].reshape(-1)).reshape(z.shape[:-1]) for j, m in enumerate(marginals)],
                           -1)

    log_p = Normal(0.0, 1.0).log_prob
    expected = {
        "index_code_mi": _gauss_hermite_expectations(
            loc, scale, lambda z: Independent(Normal(loc[:, None], scale[:, None]), 1).log_prob(z) - log_q(z)),
        "marginal_kl": _gauss_hermite_expectations(loc, scale, lambda z: log_q(z) - log_p(z).sum(-1)),
        "total_correlation": _gauss_hermite_expectations(loc, scale, lambda z: log_q(z) - log_q_marginals(z).sum(-1)),
        "dimensionwise_kl": _gauss_hermite_expectations(loc, scale,
                                                        lambda z: (log_q_marginals(z) - log_p(z)).sum(-1)),
    }
    W, b, variance = model.weight, model.bias, model.noise_scale**2
    mean_fit = Independent(Normal(loc @ W.T + b, model.noise_scale), 1).log_prob(x)
    expected["reconstruction"] = float((mean_fit - (W @ torch.diag_embed(scale**2) @ W.T).diagonal(dim1=-2, dim2=-1)
                                        .sum(-1) / (2 * variance)).mean())
    log_evidence = float(model.log_evidence(x).mean())
    expected["elbo"] = log_evidence
    for name, value in expected.items():
        assert_within_se(result[name]["mean"], result[name]["stderr"], value, what=name)
    kl = kl_divergence(Independent(Normal(loc, scale), 1), model.prior()).mean()
    assert result["kl"]["mean"] == pytest.approx(float(kl), abs=1e-12) and result["kl"]["stderr"] == 0
    terms = result["reconstruction"]["mean"] - result["index_code_mi"]["mean"] - result["marginal_kl"]["mean"]
    assert terms == pytest.approx(log_evidence, abs=1e-9)
    assert 0 < result["index_code_mi"]["mean"] <= math.log(6)
    assert sum(result["dimensionwise_kl_per_unit"]) == pytest.approx(result["dimensionwise_kl"]["mean"], abs=1e-12)


@torch.no_grad()
def test_surgery_terms_add_up_to_the_elbo_within_monte_carlo_error():
    """A poor amortized q (shifted and widened diagonal posterior) over 40 points: reconstruction - MI - marginal KL
    estimates the exact ELBO (closed form, ``exact.exact_elbo``), and MI + marginal KL the exact E_n KL(q(z|x_n) ‖
    p(z)). The standard error of a sum is at most the sum of the standard errors. 3 comparisons at NUM_SE:
    false-failure probability below 3 * 6.8e-6."""
    model, x, exact_guide = _diagonal_posterior_model(num_points=40)

    def guide(x):
        q = exact_guide(x).base_dist
        return Independent(Normal(q.loc + 0.5, 1.7 * q.scale), 1)

    result = surgery.elbo_surgery(model, guide, x, num_samples=50)
    exact_elbo = float(exact.exact_elbo(model, guide(x), x).mean())
    rec, mi, marginal = (result[name] for name in ("reconstruction", "index_code_mi", "marginal_kl"))
    assert_within_se(rec["mean"] - mi["mean"] - marginal["mean"], rec["stderr"] + mi["stderr"] + marginal["stderr"],
                     exact_elbo, what="reconstruction - MI - marginal KL")
    assert_within_se(result["elbo"]["mean"], result["elbo"]["stderr"], exact_elbo, what="reconstruction - KL")
    assert_within_se(mi["mean"] + marginal["mean"], mi["stderr"] + marginal["stderr"], result["kl"]["mean"],
                     what="MI + marginal KL")
    assert 0 <= mi["mean"] + NUM_SE * mi["stderr"] and mi["mean"] <= math.log(40)


class _IndexModel(torch.nn.Module):
    """Points are indices n (x = [[n], ...]); q(z|x_n) = N(loc[n], diag(scale[n]²)) is a table, and the model a
    linear-Gaussian one of x (its likelihood only makes the reconstruction defined)."""

    def __init__(self, loc, scale):
        super().__init__()
        self.loc, self.scale = loc, scale
        self.model = exact.LinearGaussian(torch.ones(1, loc.shape[1]), torch.zeros(1), 1.0)

    def prior(self):
        return self.model.prior()

    def likelihood(self, z):
        return self.model.likelihood(z)

    def guide(self, x):
        n = x[:, 0].long()
        return Independent(Normal(self.loc[n], self.scale[n]), 1)


def _surgery_of_table(loc, scale, **settings):
    table = _IndexModel(loc, scale)
    x = torch.arange(len(loc), dtype=torch.float64)[:, None]
    return surgery.elbo_surgery(table, table.guide, x, **settings)


def test_identical_posteriors_carry_no_information_about_the_index():
    """Every q(z|x_n) the same q: then q(z) = q, so log q(z|x_n) - log q(z) = 0 for every draw (MI = 0 to rounding),
    the marginal KL is KL(q ‖ p), the diagonal q factorizes (total correlation 0 to rounding), and the dimension-wise
    KL is Σ_j KL(q_j ‖ p_j). 2 comparisons at NUM_SE: false-failure probability below 2 * 6.8e-6."""
    loc, scale = torch.tensor([[0.5, -1.0, 2.0]]).expand(50, 3), torch.tensor([[0.3, 1.5, 0.8]]).expand(50, 3)
    result = _surgery_of_table(loc, scale, num_samples=20)
    kl = kl_divergence(Normal(loc[0], scale[0]), Normal(0.0, 1.0))
    assert abs(result["index_code_mi"]["mean"]) < 1e-9 and abs(result["total_correlation"]["mean"]) < 1e-9
    for name in ("marginal_kl", "dimensionwise_kl"):
        assert_within_se(result[name]["mean"], result[name]["stderr"], kl.sum(), what=name)
    assert result["kl"]["mean"] == pytest.approx(float(kl.sum()), abs=1e-12)


def test_total_correlation_vanishes_when_the_aggregate_posterior_factorizes():
    """Components on a 3 x 4 grid, q_ab(z) = N(z_1; μ_a, σ_a²) N(z_2; ν_b, τ_b²): the mixture over all twelve is
    (1/3 Σ_a N(z_1; μ_a, σ_a²)) (1/4 Σ_b N(z_2; ν_b, τ_b²)), so log q(z) = Σ_j log q(z_j) at every draw. The same
    components paired along the diagonal instead (z_1 and z_2 move together) have a total correlation far above zero.
    One comparison at NUM_SE."""
    mu, sigma, nu, tau = (torch.tensor(v) for v in ([-2.0, 0.0, 3.0], [0.5, 0.3, 1.0], [-1.0, 0.0, 1.0, 2.0],
                                                       [0.2, 0.4, 0.3, 0.5]))
    a, b = torch.meshgrid(torch.arange(3), torch.arange(4), indexing="ij")
    grid = _surgery_of_table(torch.stack([mu[a], nu[b]], -1).reshape(12, 2),
                             torch.stack([sigma[a], tau[b]], -1).reshape(12, 2), num_samples=10)
    assert abs(grid["total_correlation"]["mean"]) < 1e-9 and grid["index_code_mi"]["mean"] > 1
    diagonal = _surgery_of_table(torch.stack([mu, nu[:3]], -1), torch.full((3, 2), 0.3), num_samples=200)
    assert diagonal["total_correlation"]["mean"] > NUM_SE * diagonal["total_correlation"]["stderr"] + 0.3


def test_well_separated_posteriors_reach_the_most_mutual_information_log_n():
    """Components 100 standard deviations apart: at a draw from q(z|x_n) every other component's density is below
    e^-1000, so log q(z) = log q(z|x_n) - log N and MI = log N, its upper bound."""
    loc = torch.arange(30, dtype=torch.float64)[:, None].repeat(1, 2) * 10
    result = _surgery_of_table(loc, torch.full((30, 2), 0.1), num_samples=3)
    assert result["index_code_mi"]["mean"] == pytest.approx(math.log(30), abs=1e-9)


def test_the_aggregate_densities_are_the_mixture_densities_chunked_or_not():
    """log q(z) and each log q(z_j) against torch's MixtureSameFamily, for every block size (1 is one point and one
    component at a time); and ELBO surgery gives the same numbers for any block size on the same draws."""
    generator = torch.Generator().manual_seed(2)
    loc, scale = torch.randn(37, 3, generator=generator), torch.rand(37, 3, generator=generator) + 0.05
    z = 2 * torch.randn(23, 3, generator=generator)
    mixture = MixtureSameFamily(Categorical(torch.ones(37)), Independent(Normal(loc, scale), 1))
    marginals = torch.stack([MixtureSameFamily(Categorical(torch.ones(37)), Normal(loc[:, j], scale[:, j]))
                             .log_prob(z[:, j]) for j in range(3)], 1)
    for block_size in (1, 5, 1000):
        torch.testing.assert_close(surgery.log_aggregate_density(z, loc, scale, block_size=block_size),
                                   mixture.log_prob(z), rtol=0, atol=1e-10)
        torch.testing.assert_close(surgery.log_marginal_densities(z, loc, scale, block_size=block_size), marginals,
                                   rtol=0, atol=1e-10)
    results = []
    for block_size in (4096, 7, 1):
        torch.manual_seed(5)
        results.append(_surgery_of_table(loc, scale, num_samples=2, dimension_samples=40, block_size=block_size))
    for result in results[1:]:
        for name in surgery.SURGERY_TERMS:
            assert result[name]["mean"] == pytest.approx(results[0][name]["mean"], abs=1e-10), name


def test_surgery_of_a_vae_and_what_it_refuses():
    """A small VAE on binary data: the bounds on MI hold; a two-layer model, a full-covariance guide, data of the wrong
    shape and a single point are refused by name."""
    torch.manual_seed(0)
    model = make_vae(VAEConfig(latent_dims=(3,), hidden_dims=((8,),), image_shape=(3, 3), likelihood="bernoulli"))
    x = torch.rand(200, 9).bernoulli()
    result = surgery.elbo_surgery(model, model.guide, x, num_samples=2, dimension_samples=100)
    assert result["dimension_samples"] == 100 and len(result["dimensionwise_kl_per_unit"]) == 3
    assert result["standard_errors"] == ("Monte Carlo error given the data set; total correlation and dimension-wise "
                                         "KL: over the 50 randomly chosen points")
    mi = result["index_code_mi"]
    assert -NUM_SE * mi["stderr"] <= mi["mean"] <= math.log(200)
    two_layers = make_vae(VAEConfig(latent_dims=(3, 2), hidden_dims=((8,), (4,)), image_shape=(3, 3),
                                    likelihood="bernoulli"))
    with pytest.raises(ValueError, match=r"has no prior\(\) and likelihood\(z\) .* so ELBO surgery is not available"):
        surgery.elbo_surgery(two_layers, two_layers.guide, x)
    linear, points = _model_and_data(num_points=5)
    with pytest.raises(ValueError, match=r"q\(z\|x\) must be a diagonal Gaussian.* got MultivariateNormal"):
        surgery.elbo_surgery(linear, _poor_guide(linear), points)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 9\) .* got \(200, 4\)"):
        surgery.elbo_surgery(model, model.guide, x[:, :4])
    with pytest.raises(ValueError, match="at least 2 data points, got 1"):
        surgery.elbo_surgery(model, model.guide, x[:1])
