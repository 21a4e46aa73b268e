"""The spikes kind's mathematics: the GP prior and the banded Gauss–Markov q against dense Gaussians built by hand,
their closed-form KL against torch's dense one and Monte Carlo, the model under elbo.bounds, and a small Lorenz data
set that trains past kernel smoothing."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from elbo import bounds
from elbo.errors import InputError
from elbo.models.spikes import SpikeConfig, configure
from elbo.models.spikes.baselines import kernel_smoothing
from elbo.models.spikes.datasets import load_lorenz
from elbo.models.spikes.distributions import GaussianProcess, MarkovGaussian, squared_exponential
from elbo.models.spikes.metrics import rate_r2
from elbo.models.spikes.model import PoissonGPVAE
from helpers import NUM_SE

T, D = 6, 2


def _times():
    return torch.arange(T) * 0.02


def _kernel_by_hand(times, timescales, jitter):
    K = torch.empty(len(timescales), len(times), len(times))
    for j, scale in enumerate(timescales.tolist()):
        for a, s in enumerate(times.tolist()):
            for b, t in enumerate(times.tolist()):
                K[j, a, b] = (1 - jitter) * math.exp(-(s - t) ** 2 / (2 * scale ** 2)) + jitter * (a == b)
    return K


def _q(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(batch, T, D, generator=g)
    diag = torch.rand(batch, T, D, generator=g) + 0.5
    sub = torch.randn(batch, T - 1, D, generator=g)
    return MarkovGaussian(loc, diag, sub)


def _dense_precision_by_hand(q):
    """Λ_j = B_j B_jᵀ with B_j[t, t] = a_t, B_j[t + 1, t] = b_t: (batch, D, T, T)."""
    batch = q.loc.shape[0]
    factor = torch.zeros(batch, D, T, T)
    for i in range(batch):
        for j in range(D):
            for t in range(T):
                factor[i, j, t, t] = q.diag[i, t, j]
                if t < T - 1:
                    factor[i, j, t + 1, t] = q.sub[i, t, j]
    return factor @ factor.transpose(-1, -2)


def test_squared_exponential_kernel_and_gp_log_density_match_dense_gaussians_by_hand():
    timescales = torch.tensor([0.03, 0.1])
    K = squared_exponential(_times(), timescales, jitter=1e-3)
    torch.testing.assert_close(K, _kernel_by_hand(_times(), timescales, 1e-3))
    p = GaussianProcess(K)
    assert p.batch_shape == () and p.event_shape == (T, D)
    z = torch.randn(4, 3, T, D)  # (K, B, T, d)
    log_p = p.log_prob(z)
    assert log_p.shape == (4, 3)
    by_hand = torch.zeros(4, 3)
    for j in range(D):
        quadratic = torch.einsum("kbt,ts,kbs->kb", z[..., j], torch.linalg.inv(K[j]), z[..., j])
        by_hand += -0.5 * quadratic - 0.5 * torch.logdet(2 * math.pi * K[j])
    torch.testing.assert_close(log_p, by_hand)
    torch.testing.assert_close(p.variance, K.diagonal(dim1=-2, dim2=-1).T)
    assert p.rsample((5,)).shape == (5, T, D)


def test_markov_gaussian_density_entropy_and_variances_match_the_dense_gaussian():
    q = _q()
    precision = _dense_precision_by_hand(q)
    torch.testing.assert_close(q.precision_matrix, precision)
    dense = MultivariateNormal(q.loc.transpose(-1, -2), precision_matrix=precision)  # batch (B, D), event (T,)
    z = torch.randn(7, 3, T, D)
    assert q.batch_shape == (3,) and q.event_shape == (T, D) and q.log_prob(z).shape == (7, 3)
    torch.testing.assert_close(q.log_prob(z), dense.log_prob(z.transpose(-1, -2)).sum(-1))
    torch.testing.assert_close(q.entropy(), dense.entropy().sum(-1))
    torch.testing.assert_close(q.variance, torch.linalg.inv(precision).diagonal(dim1=-2, dim2=-1).transpose(-1, -2))


def test_markov_gaussian_draws_have_its_mean_and_covariance():
    # 8 means and 64 covariances, each at 4.5 standard errors: false-failure probability below 72 · 6.8e-6 = 5e-4
    torch.manual_seed(1)
    q = _q(batch=1, seed=3)
    n = 200_000
    z = q.rsample((n,))[:, 0].reshape(n, T * D)  # (n, T·D), index t·D + j
    loc = q.loc[0].reshape(T * D)
    covariance = torch.block_diag(*torch.linalg.inv(_dense_precision_by_hand(q)[0]))  # index j·T + t
    order = torch.arange(T * D).reshape(T, D).T.reshape(-1)  # from (t, j) order to (j, t) order
    z, loc = z[:, order], loc[order]
    mean_se = z.std(0) / math.sqrt(n)
    assert ((z.mean(0) - loc).abs() <= NUM_SE * mean_se).all()
    r = z - loc
    products = r[:, :, None] * r[:, None, :]
    covariance_se = products.std(0) / math.sqrt(n)
    assert ((products.mean(0) - covariance).abs() <= NUM_SE * covariance_se + 1e-12).all()
    assert q.sample((2,)).shape == (2, 1, T, D)


def test_closed_form_kl_matches_the_dense_kl_and_monte_carlo():
    q = _q(batch=2, seed=5)
    p = GaussianProcess(squared_exponential(_times(), torch.tensor([0.05, 0.2]), jitter=1e-2))
    kl = kl_divergence(q, p)
    assert kl.shape == (2,)
    dense_q = MultivariateNormal(q.loc.transpose(-1, -2), precision_matrix=_dense_precision_by_hand(q))
    dense_p = MultivariateNormal(torch.zeros(D, T), covariance_matrix=p.scale_tril @ p.scale_tril.transpose(-1, -2))
    torch.testing.assert_close(kl, kl_divergence(dense_q, dense_p).sum(-1))
    # Monte Carlo: 2 comparisons at 4.5 standard errors, false-failure probability below 1.4e-5
    torch.manual_seed(2)
    z = q.rsample((100_000,))
    log_ratio = q.log_prob(z) - p.log_prob(z)
    assert ((log_ratio.mean(0) - kl).abs() <= NUM_SE * log_ratio.std(0) / math.sqrt(len(z))).all()


def _model(held_in=4, num_neurons=5, hidden_size=8):
    config = SpikeConfig(latent_dim=D, hidden_size=hidden_size, num_neurons=num_neurons, held_in=held_in, num_bins=T,
                         bin_size=0.02)
    return PoissonGPVAE(config)


def _counts(trials=3, neurons=5, seed=0):
    return torch.poisson(torch.full((trials, T, neurons), 1.5), generator=torch.Generator().manual_seed(seed))


def test_model_shapes_and_its_analytic_elbo_is_the_expected_log_likelihood_minus_the_closed_form_kl():
    model, x = _model(), _counts()
    z = model.guide(x).rsample((4,))
    assert z.shape == (4, 3, T, D)
    assert model.prior().log_prob(z).shape == model.likelihood(z).log_prob(x).shape == (4, 3)
    assert model.likelihood(z).event_shape == (T, 5)
    torch.manual_seed(7)
    value = bounds.elbo(model, model.guide, x, 3, form="analytic")
    torch.manual_seed(7)
    q = model.guide(x)
    z = q.rsample((3,))
    torch.testing.assert_close(value, model.likelihood(z).log_prob(x).mean(0) - kl_divergence(q, model.prior()))


def test_iwae_with_one_sample_is_the_elbo_of_the_same_draw_and_every_estimator_runs():
    model, x = _model(), _counts()
    torch.manual_seed(3)
    one = bounds.iwae(model, model.guide, x, 1)
    torch.manual_seed(3)
    torch.testing.assert_close(one, bounds.elbo(model, model.guide, x, 1, form="mc"))
    for estimator in ("reparam", "stl", "dreg"):
        model.zero_grad()
        value = bounds.iwae(model, model.guide, x, 5, estimator=estimator)
        value.mean().backward()
        assert torch.isfinite(value).all() and all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_the_encoder_sees_only_the_held_in_neurons_and_rates_are_their_expectation_under_q():
    model, x = _model(held_in=3), _counts()
    changed = x.clone()
    changed[..., 3:] += 5
    q, q_changed = model.guide(x), model.guide(changed)
    assert torch.equal(q.loc, q_changed.loc) and torch.equal(q.diag, q_changed.diag)
    # E_q[exp(c·z + d)] against 100,000 draws: 90 comparisons at 4.5 standard errors, false-failure below 6.1e-4
    torch.manual_seed(4)
    with torch.no_grad():
        draws = model.readout(q.rsample((100_000,))).exp()
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((model.firing_rates(x) - draws.mean(0)).abs() <= NUM_SE * se).all()


def test_check_data_refuses_what_is_not_counts_and_init_from_data_starts_at_the_mean_rates():
    model, x = _model(), _counts()
    model.check_data(x)
    for bad in (x[..., :4], x.long(), x - 3, x + 0.5, x[0]):
        with pytest.raises(InputError, match="x must"):
            model.check_data(bad)
    model.init_from_data(x)
    torch.testing.assert_close(model.readout.bias.exp(), x.mean((0, 1)) / 0.02)


def test_config_is_validated_and_a_model_needs_the_data_fields():
    for settings in (dict(latent_dim=0), dict(jitter=1.0), dict(timescale=-1.0), dict(num_neurons=3, held_in=4),
                     dict(num_bins=1)):
        with pytest.raises(InputError):
            SpikeConfig(**settings)
    with pytest.raises(InputError, match="num_neurons is None"):
        PoissonGPVAE(SpikeConfig())


@pytest.mark.e2e
def test_small_lorenz_data_set_trains_past_kernel_smoothing():
    torch.set_default_dtype(torch.float32)  # speed; the fixture restores float64
    data = load_lorenz(seed=1, num_conditions=16, trials_per_condition=4)
    torch.manual_seed(0)
    model = PoissonGPVAE(configure(SpikeConfig(hidden_size=32), data))
    model.init_from_data(data.train)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = -bounds.elbo(model, model.guide, data.train, validate_args=False).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    true_rates = data.test_rates
    smoothing = max(rate_r2(true_rates, kernel_smoothing(data.test, bin_size=data.bin_size, width=width))
                    for width in (0.05, 0.1, 0.15, 0.2))  # the best kernel for this data, chosen with the truth
    assert rate_r2(true_rates, model.firing_rates(data.test)) > smoothing + 0.05
