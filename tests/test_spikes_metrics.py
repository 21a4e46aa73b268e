"""The spikes kind's measures against hand computations (Poisson log-likelihood, co-bps, bits per spike, R²), and
its baselines: kernel smoothing, NLB's smoothing of co-smoothing, and the oracle under the true readout."""

import math

import pytest
import torch
from scipy.stats import poisson
from sklearn.metrics import r2_score

from elbo.errors import InputError
from elbo.models.spikes.baselines import kernel_smoothing, oracle, smoothing_predictions
from elbo.models.spikes.datasets import load_lorenz
from elbo.models.spikes.metrics import bits_per_spike, co_bps, latent_r2, null_rates, poisson_log_likelihood, rate_r2

DT = 0.02


@pytest.fixture
def lorenz():
    return load_lorenz(seed=2, num_conditions=20, trials_per_condition=4)


def _counts_and_rates(seed=0, shape=(3, 4, 2)):
    g = torch.Generator().manual_seed(seed)
    rates = torch.rand(shape, generator=g) * 40 + 1
    return torch.poisson(rates * DT, generator=g), rates


def test_poisson_log_likelihood_is_the_sum_of_log_pmfs():
    counts, rates = _counts_and_rates()
    expected = poisson.logpmf(counts.numpy(), rates.numpy() * DT).sum()
    assert poisson_log_likelihood(counts, rates, bin_size=DT) == pytest.approx(expected, rel=1e-12)
    one = poisson_log_likelihood(torch.tensor([[[3.0]]]), torch.tensor([[[50.0]]]), bin_size=DT)
    assert one == pytest.approx(3 * math.log(1.0) - 1.0 - math.log(6))  # λ = 50 · 0.02 = 1
    assert poisson_log_likelihood(torch.tensor([[[1.0]]]), torch.zeros(1, 1, 1), bin_size=DT) == -math.inf


def test_co_bps_by_hand_is_zero_for_the_null_model_and_positive_for_the_true_rates(lorenz):
    counts, rates = _counts_and_rates(1)
    train, _ = _counts_and_rates(2, shape=(5, 4, 2))
    null = train.mean((0, 1)) / DT
    nll_null = -poisson.logpmf(counts.numpy(), (null * DT).numpy()).sum()
    nll_model = -poisson.logpmf(counts.numpy(), (rates * DT).numpy()).sum()
    expected = (nll_null - nll_model) / (counts.sum().item() * math.log(2))
    assert co_bps(counts, rates, train, bin_size=DT) == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(null_rates(train, bin_size=DT), null.double())
    assert co_bps(counts, null.expand(counts.shape), train, bin_size=DT) == 0.0
    held_in = lorenz.held_in
    true = co_bps(lorenz.test[..., held_in:], lorenz.test_rates[..., held_in:], lorenz.train[..., held_in:],
                  bin_size=lorenz.bin_size)
    assert true > 0.2


def test_bits_per_spike_is_the_gain_over_the_null_model_per_spike():
    counts, rates = _counts_and_rates(3)
    train, _ = _counts_and_rates(4, shape=(6, 4, 2))
    log_p = torch.tensor([-10.0, -12.0, -9.5])
    null = poisson.logpmf(counts.numpy(), train.mean((0, 1)).expand(counts.shape).numpy()).sum()
    expected = (log_p.sum().item() - null) / (counts.sum().item() * math.log(2))
    assert bits_per_spike(log_p, counts, train, bin_size=DT) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(InputError, match="log_likelihoods"):
        bits_per_spike(log_p[:2], counts, train, bin_size=DT)


def test_rate_r2_is_scikit_learns_variance_weighted_r2_and_latent_r2_sees_through_an_affine_map():
    truth = torch.randn(4, 10, 3) * torch.tensor([1.0, 2.0, 3.0])
    estimate = truth + 0.5 * torch.randn(4, 10, 3)
    expected = r2_score(truth.reshape(-1, 3).numpy(), estimate.reshape(-1, 3).numpy(), multioutput="variance_weighted")
    assert rate_r2(truth, estimate) == pytest.approx(expected, rel=1e-12)
    assert rate_r2(truth, truth) == 1.0
    mixed = truth @ torch.randn(3, 3) + torch.tensor([1.0, -2.0, 0.5])
    assert latent_r2(truth, mixed) == pytest.approx(1.0, abs=1e-10)
    assert latent_r2(truth, torch.randn(4, 10, 3)) < 0.2
    assert latent_r2(truth, mixed, seed=1) == pytest.approx(1.0, abs=1e-10)


def test_measures_refuse_mismatched_shapes_and_a_silent_null_neuron():
    counts, rates = _counts_and_rates()
    with pytest.raises(InputError, match="rates"):
        poisson_log_likelihood(counts, rates[:2], bin_size=DT)
    with pytest.raises(InputError, match="train_counts"):
        co_bps(counts, rates, counts[..., :1], bin_size=DT)
    silent = counts.clone()
    silent[..., 0] = 0
    with pytest.raises(InputError, match="never fires"):
        co_bps(counts + 1, rates, silent, bin_size=DT)
    with pytest.raises(InputError, match="bin_size"):
        co_bps(counts, rates, counts, bin_size=0)
    with pytest.raises(InputError, match="constant"):
        rate_r2(torch.ones(2, 3, 2), rates[:2, :3])


def test_kernel_smoothing_keeps_a_constant_rate_and_averages_neighbours():
    counts = torch.full((2, 7, 3), 2.0)
    torch.testing.assert_close(kernel_smoothing(counts, bin_size=DT, width=0.05), torch.full((2, 7, 3), 100.0))
    spike = torch.zeros(1, 5, 1)
    spike[0, 2, 0] = 1
    smoothed = kernel_smoothing(spike, bin_size=DT, width=DT)[0, :, 0]
    weights = torch.exp(-torch.tensor([4.0, 1.0, 0.0, 1.0, 4.0]) / 2)  # k(t - 2) at one bin per standard deviation
    rows = torch.exp(-(torch.arange(5.0)[:, None] - torch.arange(5.0)[None, :]).square() / 2).sum(1)
    torch.testing.assert_close(smoothed, weights / rows / DT)


def test_oracle_recovers_the_latents_and_beats_smoothing_and_nlb_smoothing_co_smooths(lorenz):
    rates, latents = lorenz.truth("test")
    z, oracle_rates = oracle(lorenz.test, lorenz.weights, lorenz.bias, bin_size=lorenz.bin_size, timescale=0.2,
                             prior_variance=lorenz.train_latents.var((0, 1)))
    assert z.shape == latents.shape and oracle_rates.shape == rates.shape
    torch.testing.assert_close(oracle_rates, (z @ lorenz.weights.double().T + lorenz.bias.double()).exp())
    assert latent_r2(latents, z) > 0.8
    smoothing = max(rate_r2(rates, kernel_smoothing(lorenz.test, bin_size=lorenz.bin_size, width=width))
                    for width in (0.05, 0.1, 0.15, 0.2))
    assert rate_r2(rates, oracle_rates) > smoothing + 0.1
    held_in = lorenz.held_in
    predicted = smoothing_predictions(lorenz.train[..., :held_in], lorenz.train[..., held_in:],
                                      lorenz.test[..., :held_in], bin_size=lorenz.bin_size)
    assert predicted.shape == lorenz.test[..., held_in:].shape
    assert co_bps(lorenz.test[..., held_in:], predicted, lorenz.train[..., held_in:], bin_size=lorenz.bin_size) > 0.1
    with pytest.raises(InputError, match="weights"):
        oracle(lorenz.test, lorenz.weights[:3], lorenz.bias, bin_size=lorenz.bin_size)


def test_the_kinds_evaluation_hook_reports_bits_per_spike_co_bps_and_the_r2s(lorenz):
    from types import SimpleNamespace

    from elbo.evaluate import iwae_per_point
    from elbo.models.spikes import KIND, SpikeConfig, configure
    from elbo.models.spikes.evaluation import metrics
    from elbo.models.spikes.model import make_spike_model

    model = make_spike_model(configure(SpikeConfig(hidden_size=8), lorenz)).eval()
    model.init_from_data(lorenz.train)
    per_point = {"log_likelihood": iwae_per_point(model, model.guide, lorenz.test, 10)}
    result = metrics(SimpleNamespace(model=model, data=lorenz), lorenz.test, per_point)
    assert set(result) == {"bits_per_spike", "co_bps", "rate_r2", "latent_r2"}
    assert all(math.isfinite(value) for value in result.values())
    assert KIND.call("metrics", SimpleNamespace(model=model, data=lorenz), lorenz.test[:5], per_point | {
        "log_likelihood": per_point["log_likelihood"][:5]}).keys() == result.keys()
