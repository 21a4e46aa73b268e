"""AIS and BDMC (``elbo.ais``) against the exact evidence of the linear-Gaussian model; HMC's invariance; the
weights' summary. Statistical comparisons use ``NUM_SE`` standard errors (false failure below 7e-6 each)."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from elbo import ais, exact
from elbo.errors import InputError
from helpers import NUM_SE, assert_within_se


class _Amortized(exact.LinearGaussian):
    """The linear-Gaussian model with an amortized q(z|x): the exact posterior shifted by ``shift`` and ``width``
    times as wide (``shift = 0``, ``width = 1``: the posterior itself)."""

    def __init__(self, *args, shift=0.4, width=2.0):
        super().__init__(*args)
        self.shift, self.width = shift, width

    def guide(self, x):
        posterior = self.posterior(x)
        return MultivariateNormal(posterior.loc + self.shift,
                                  covariance_matrix=self.width**2 * posterior.covariance_matrix)


def _model(seed=0, latent_dim=3, data_dim=6, **guide):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(data_dim, latent_dim, generator=generator, dtype=torch.float64)
    bias = torch.randn(data_dim, generator=generator, dtype=torch.float64)
    return _Amortized(weight, bias, 0.5, **guide).requires_grad_(False)


def test_the_schedule_rises_from_zero_to_one():
    betas = ais.schedule(50)
    assert betas.shape == (51,) and betas[0] == 0 and betas[-1] == 1 and bool((betas.diff() > 0).all())
    assert betas[1] < 1 / 50 and betas[25] == pytest.approx(0.5)  # dense at the ends, symmetric


def test_hmc_leaves_a_gaussian_target_invariant():
    """Exact draws of N(m, S) stay N(m, S) through 10 transitions (β = 1, the posterior); checked on the mean and
    variance of each coordinate over 4000 chains (12 comparisons at NUM_SE)."""
    torch.manual_seed(0)
    model = _model()
    x = model.marginal().sample((1,))
    posterior = model.posterior(x)
    log_joint = lambda z: model.prior().log_prob(z) + model.likelihood(z).log_prob(x)  # noqa: E731
    initial = model.prior().expand((1,))
    state = ais._evaluate(log_joint, initial, posterior.sample((4000,)))
    metric = ais._metric(initial, state.z)
    for _ in range(10):
        state, accept = ais.hmc_step(log_joint, initial, state, 1.0, torch.tensor([0.3], dtype=torch.float64),
                                     metric, 5)
    assert 0.2 < float(accept.mean()) < 1  # the transitions moved
    z = state.z[:, 0]
    mean, var = posterior.loc[0], posterior.covariance_matrix[0].diagonal()
    assert_within_se(z.mean(0), (var / len(z)).sqrt(), mean, what="mean")
    assert_within_se(z.var(0), (2 * var**2 / (len(z) - 1)).sqrt(), var, what="variance")


def test_from_the_exact_posterior_every_weight_is_the_evidence():
    """With q₀ = p(z|x), f(z) = log p(x, z) − log p(z|x) = log p(x) everywhere, so log w = Σ Δβ log p(x)."""
    torch.manual_seed(0)
    model = _model(shift=0.0, width=1.0)
    x = model.marginal().sample((5,))
    result = ais.ais_per_point(model, x, 7, num_chains=3)
    torch.testing.assert_close(result["log_mean_weight"], model.log_evidence(x), rtol=0, atol=1e-9)
    torch.testing.assert_close(result["ess"], torch.full((5,), 3.0, dtype=torch.float64))


@pytest.mark.parametrize("start", ["guide", pytest.param("prior", marks=pytest.mark.slow)])  # prior: 18 s
def test_ais_and_bdmc_agree_with_the_exact_evidence(start):
    """A long schedule (100 steps from q(z|x), 400 from the prior): the mean over 60 simulated points of each bound
    minus the exact log p(x) is within NUM_SE standard errors (over the points) of zero; the gap between them is
    small and not negative beyond its error."""
    torch.manual_seed(1)
    model = _model()
    x, z = ais.simulate(model, 60)
    result = ais.bdmc_per_point(model, x, z, {"guide": 100, "prior": 400}[start], start=start, num_chains=8,
                                batch_size=30)
    log_px = model.log_evidence(x)
    for name in ("lower", "upper"):
        error = result[name] - log_px
        assert_within_se(error.mean(), error.std() / math.sqrt(len(error)), 0.0, what=name)
    gap = result["upper"] - result["lower"]
    assert -NUM_SE * float(gap.std()) / math.sqrt(len(gap)) < float(gap.mean()) < 0.2
    assert bool((result["ess"] >= 1).all() and (result["ess"] <= 8 + 1e-9).all())


def test_short_schedules_bound_from_below_and_above():
    """Five steps from the prior: over 200 points (as many seeds of the chains), E[lower] < log p(x) < E[upper], each
    by more than NUM_SE standard errors, and the gap closes as the schedule grows."""
    torch.manual_seed(2)
    model = _model()
    x, z = ais.simulate(model, 200)
    log_px = model.log_evidence(x)
    gaps = []
    for num_steps in (5, 50):
        result = ais.bdmc_per_point(model, x, z, num_steps, start="prior", num_chains=4, batch_size=200)
        below, above = log_px - result["lower"], result["upper"] - log_px
        if num_steps == 5:
            for side in (below, above):
                assert float(side.mean()) > NUM_SE * float(side.std()) / math.sqrt(len(side))
        gaps.append(result["upper"] - result["lower"])
    difference = gaps[0] - gaps[1]
    assert float(difference.mean()) > NUM_SE * float(difference.std()) / math.sqrt(len(difference))


def test_summary_of_known_weights():
    equal = ais.summary(torch.zeros(4, 2))
    torch.testing.assert_close(equal["ess"], torch.full((2,), 4.0, dtype=torch.float64))
    torch.testing.assert_close(equal["mc_stderr"], torch.zeros(2, dtype=torch.float64))
    log_w = torch.tensor([[0.0], [math.log(3.0)]])  # w = (1, 3): ESS = 16 / 10; sd / (mean √C) = √2 / (2 √2)
    result = ais.summary(log_w)
    assert float(result["ess"]) == pytest.approx(1.6)
    assert float(result["log_mean_weight"]) == pytest.approx(math.log(2.0))
    assert float(result["mc_stderr"]) == pytest.approx(math.sqrt(2.0) / (2.0 * math.sqrt(2.0)))
    assert math.isnan(float(ais.summary(torch.zeros(1, 3))["mc_stderr"][0]))


def test_bad_settings_are_one_line():
    model = _model()
    x = model.marginal().sample((2,))
    with pytest.raises(InputError, match="num_steps"):
        ais.ais_per_point(model, x, 0)
    with pytest.raises(InputError, match="start"):
        ais.ais_per_point(model, x, 3, start="posterior")
    with pytest.raises(InputError, match="z must have shape"):
        ais.anneal(lambda z: z.sum(-1), model.prior().expand((2,)), torch.zeros(2, 3), ais.schedule(3))
    simplex = torch.distributions.Dirichlet(torch.ones(2, 3))
    with pytest.raises(InputError, match="real line"):
        ais.anneal(lambda z: z.sum(-1), simplex, simplex.sample((1,)), ais.schedule(3))
    with pytest.raises(InputError, match="same number of points"):
        ais.bdmc_per_point(model, x, torch.zeros(3, 3), 3)


def test_evaluate_adds_the_ladder_and_the_kl_bracket():
    """``evaluate(..., ais_steps, bdmc_steps)`` on the linear-Gaussian model with a poor q(z|x): AIS's mean is within
    NUM_SE Monte Carlo standard errors of the exact mean log p(x) of the same points, and above IWAE-5 and the ELBO;
    on simulated points the bracket on KL(q ‖ p) is ordered and consistent with its rungs; the schema takes it all."""
    from elbo import evaluate, schemas
    from elbo.configs import AIS_STARTS

    assert AIS_STARTS == ais.START
    torch.manual_seed(3)
    model = _model()
    test = model.marginal().sample((40,))
    result = evaluate.evaluate(model, test, num_samples=5, iwae_samples=(), ais_steps=100, bdmc_steps=100,
                               ais_chains=8)
    exact_mean = float(model.log_evidence(test).mean())
    difference = float(result["ais"]["mean"]) - exact_mean
    assert abs(difference) < NUM_SE * result["ais"]["mc_stderr"]  # the points are the same: Monte Carlo error only
    assert result["elbo"]["mean"] < result["log_likelihood"]["mean"] < result["ais"]["mean"]
    assert result["ais"]["minus_log_likelihood"]["mean"] > 0 and result["ais"]["minus_elbo"]["mean"] > 0
    bdmc = result["bdmc"]
    assert bdmc["num_points"] == 40 and bdmc["kl_lower"]["mean"] <= bdmc["kl_upper"]["mean"] + 0.05
    assert bdmc["lower"]["mean"] == pytest.approx(bdmc["elbo"]["mean"] + bdmc["kl_lower"]["mean"])
    run = {"run": "r", "epoch": 1, "data": "d", "unit": "point", "seed": 0, "processes": 1, **result}
    schemas.check("evaluation", run, "r/evaluation.json")
    broken = {**run, "ais": {**run["ais"], "ess": "many"}}
    with pytest.raises(InputError, match='"ais.ess" must be a number'):
        schemas.check("evaluation", broken, "r/evaluation.json")


def test_simulated_documents_take_the_test_documents_lengths():
    """A topic model's likelihood has no length: BDMC's simulated documents are as long as the test documents, and
    the bracket comes out for them; a Dirichlet q (on the simplex) is refused in one line."""
    from elbo import evaluate
    from elbo.models.topics.config import TopicConfig
    from elbo.models.topics.model import make_topic_model

    torch.manual_seed(4)
    model = make_topic_model(TopicConfig(model="nvdm", num_topics=3, vocab_size=12, hidden_dims=(8,))).eval()
    test = torch.distributions.Multinomial(30, torch.ones(12)).sample((6,))
    test[2] = torch.tensor([1.0] * 5 + [0.0] * 7)
    x, z = evaluate._simulate(model, test)
    assert x.shape == test.shape and z.shape == (6, 3)
    torch.testing.assert_close(x.sum(-1), test.sum(-1))
    result = evaluate.evaluate(model, test, num_samples=5, iwae_samples=(), bdmc_steps=5, ais_chains=2)
    assert result["bdmc"]["num_points"] == 6 and math.isfinite(result["bdmc"]["gap"]["mean"])
    dirichlet = make_topic_model(TopicConfig(model="dirichlet", num_topics=3, vocab_size=12, hidden_dims=(8,)))
    with pytest.raises(InputError, match="real line"):
        ais.ais_per_point(dirichlet.eval(), test, 3)


def test_a_markov_gaussian_colors_with_a_factor_of_its_covariance():
    """The spike model's q (``MarkovGaussian``, a ``Colors``): ``color`` is a factor L with L Lᵀ = Λ⁻¹ (its dense
    precision inverted), and ``color_transpose`` is Lᵀ; HMC then moves in its whitened coordinates."""
    from elbo.models.spikes.distributions import MarkovGaussian

    generator = torch.Generator().manual_seed(0)
    T, d = 5, 2
    q = MarkovGaussian(torch.randn(1, T, d, generator=generator, dtype=torch.float64),
                       torch.rand(1, T, d, generator=generator, dtype=torch.float64) + 0.5,
                       torch.randn(1, T - 1, d, generator=generator, dtype=torch.float64))
    assert isinstance(q, ais.Colors)
    basis = torch.eye(T, dtype=torch.float64)  # column t: a unit vector at time t, for each latent dimension at once
    columns = torch.stack([q.color(basis[t][None, :, None].expand(1, T, d)) for t in range(T)], -1)  # (1, T, d, T)
    factor = columns[0].permute(1, 0, 2)  # (d, T, T): L of each latent dimension
    torch.testing.assert_close(factor @ factor.transpose(-1, -2), torch.linalg.inv(q.precision_matrix[0]))
    transposed = torch.stack([q.color_transpose(basis[t][None, :, None].expand(1, T, d)) for t in range(T)], -1)
    torch.testing.assert_close(transposed[0].permute(1, 0, 2), factor.transpose(-1, -2))


def test_certify_doubles_the_schedule_until_the_gap_is_below_the_tolerance():
    torch.manual_seed(5)
    model = _model()
    x, z = ais.simulate(model, 30)
    result = ais.certify(model, x, z, 0.3, num_steps=5, num_chains=4, batch_size=30)
    steps = [s for s, _ in result["tried"]]
    assert result["certified"] and result["gap"] < 0.3 and steps == [5 * 2**i for i in range(len(steps))]
    assert len(steps) > 1 and all(gap >= 0.3 for _, gap in result["tried"][:-1])
    capped = ais.certify(model, x, z, 1e-6, num_steps=5, max_steps=12, num_chains=2, batch_size=30)
    assert not capped["certified"] and [s for s, _ in capped["tried"]] == [5, 10]
