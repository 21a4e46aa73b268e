"""Bounds against the closed forms of the linear-Gaussian model (z ~ N(0, I), x | z ~ N(Wz + b, σ²I))."""

import math

import pytest
import torch

from elbo import bounds, estimators, exact, families
from helpers import NUM_SE, assert_within_se, linear_gaussian, mean_and_stderr


def _random_family(family_cls, dim, seed=3, **kwargs):
    """A family with arbitrary (not optimal) parameters."""
    torch.manual_seed(seed)
    family = family_cls(dim, batch_shape=(1,), **kwargs)
    with torch.no_grad():
        for p in family.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return family


def _replicates(fn, num_replicates):
    return torch.stack([fn().detach() for _ in range(num_replicates)])


GAUSSIAN_FAMILIES = [families.MeanField, families.FullRank, families.LowRank]


@pytest.mark.parametrize("family_cls", GAUSSIAN_FAMILIES)
@pytest.mark.parametrize("form", bounds.FORMS)
def test_elbo_gap_is_kl_to_exact_posterior(family_cls, form):
    """log p(x) - ELBO = KL(q ‖ p(z|x)) for an arbitrary q, in every form.

    One comparison per case at NUM_SE: false-failure probability 6.8e-6 each."""
    model, x = linear_gaussian()
    guide = _random_family(family_cls, 2)
    expected = (model.log_evidence(x) - torch.distributions.kl_divergence(
        exact.as_multivariate_normal(guide()), model.posterior(x))).detach()
    draws = _replicates(lambda: bounds.elbo(model, guide, x, 100, form=form), 400)
    assert_within_se(*mean_and_stderr(draws), expected, what=f"{form} ELBO")


@pytest.mark.parametrize("form", bounds.FORMS)
def test_elbo_forms_of_a_flow_agree_with_the_mc_form(form):
    """A flow has neither a registered KL nor a closed-form entropy: every form falls back to Monte Carlo
    and must still estimate the same number. The reference is a 10^5-sample mc estimate, itself with error;
    the test compares the difference with its combined standard error (false failure 6.8e-6)."""
    model, x = linear_gaussian()
    guide = families.Flow(2, batch_shape=(1,))
    with torch.no_grad():
        for p in guide.parameters():
            p.add_(0.2 * torch.randn_like(p))
    log_w, _ = bounds.log_weights(model, guide, x, 100_000)
    reference, reference_se = mean_and_stderr(log_w.detach())
    draws = _replicates(lambda: bounds.elbo(model, guide, x, 100, form=form), 400)
    mean, se = mean_and_stderr(draws)
    assert_within_se(mean - reference, (se**2 + reference_se**2).sqrt(), 0.0, what=f"flow {form} ELBO")


def test_iwae_with_one_sample_is_the_elbo_on_the_same_sample():
    model, x = linear_gaussian()
    x = x.expand(5, -1)
    guide = families.FullRank(2, batch_shape=(5,))
    for estimator in ("reparam", "stl", "dreg"):
        torch.manual_seed(7)
        iwae = bounds.iwae(model, guide, x, 1, estimator=estimator)
        torch.manual_seed(7)
        elbo = bounds.elbo(model, guide, x, 1, form="mc")
        torch.manual_seed(7)
        renyi = bounds.renyi(model, guide, x, 1, alpha=0.3)
        torch.testing.assert_close(iwae, elbo, rtol=0, atol=1e-12)
        torch.testing.assert_close(renyi, elbo, rtol=0, atol=1e-12)


def test_iwae_increases_with_k_and_approaches_log_evidence():
    """E[L_K] is nondecreasing in K and tends to log p(x) from below. Each comparison is of two
    independent means at NUM_SE (5 consecutive pairs, plus 2 comparisons with log p(x)): false failure
    below 5e-5."""
    model, x = linear_gaussian(noise_scale=0.5)
    guide = families.MeanField(2, batch_shape=(1,))  # the prior: a poor q for a correlated posterior
    log_evidence = model.log_evidence(x).item()
    means, stderrs = [], []
    ks = [1, 4, 16, 64, 256, 1024]
    for k in ks:
        num_replicates = max(400, 200_000 // k)
        xs = x.expand(num_replicates, -1)
        many = families.MeanField(2, batch_shape=(num_replicates,))  # independent replicates in one batch
        draws = bounds.iwae(model, many, xs, k).detach()
        mean, se = mean_and_stderr(draws)
        means.append(mean.item())
        stderrs.append(se.item())
    assert bounds.elbo(model, guide, x, 1).shape == (1,)
    for i in range(len(ks) - 1):
        gap, se = means[i + 1] - means[i], math.hypot(stderrs[i], stderrs[i + 1])
        assert gap > -NUM_SE * se, f"E[L_{ks[i + 1]}] = {means[i + 1]} < E[L_{ks[i]}] = {means[i]} (se {se})"
    assert means[-1] - log_evidence < NUM_SE * stderrs[-1], "L_K exceeds log p(x)"
    first_gap, last_gap = log_evidence - means[0], log_evidence - means[-1]
    assert first_gap > 1.0, "the test needs a poor q to mean anything"
    assert last_gap < first_gap / 50, f"gap at K=1024 is {last_gap}, at K=1 {first_gap}"


def _exact_posterior_guide(model, x):
    return lambda _: model.posterior(x)


@pytest.mark.parametrize("estimator", ["reparam", "stl", "dreg", "score"])
def test_exact_posterior_makes_every_bound_log_evidence_with_zero_variance(estimator):
    """With q = p(z|x) every log-weight equals log p(x), so every reduction of them does, exactly."""
    model, x = linear_gaussian()
    x = torch.cat([x, x + 1.0, x - 2.0])
    guide = _exact_posterior_guide(model, x)
    expected = model.log_evidence(x).detach()
    values = [bounds.iwae(model, guide, x, 50, estimator=estimator)]
    if estimator != "dreg":
        values.append(bounds.elbo(model, guide, x, 50, form="mc", estimator=estimator))
    if estimator in ("reparam", "stl"):
        values += [bounds.renyi(model, guide, x, 50, alpha=a, estimator=estimator) for a in (0.0, 0.5, 1.0, 2.0)]
    log_w, _ = bounds.log_weights(model, guide, x, 1000, estimator=estimator)
    torch.testing.assert_close(log_w.std(0), torch.zeros(3), rtol=0, atol=1e-10)
    for value in values:
        torch.testing.assert_close(value.detach(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("form", ["analytic", "entropy"])
def test_exact_posterior_makes_the_other_elbo_forms_log_evidence_in_expectation(form):
    """These forms split log w into a random and a closed-form part, so only their mean is exact
    (3 comparisons at NUM_SE: false failure below 2.1e-5)."""
    model, x = linear_gaussian()
    x = torch.cat([x, x + 1.0, x - 2.0])
    guide = _exact_posterior_guide(model, x)
    draws = _replicates(lambda: bounds.elbo(model, guide, x, 100, form=form), 200)
    assert_within_se(*mean_and_stderr(draws), model.log_evidence(x).detach(), what=form)


def test_bounds_are_per_datapoint_with_shape_b():
    model, x = linear_gaussian()
    x = x.expand(4, -1)
    guide = families.MeanField(2, batch_shape=(4,))
    log_w, z = bounds.log_weights(model, guide, x, 7)
    assert log_w.shape == (7, 4) and z.shape == (7, 4, 2)
    for value in (bounds.elbo(model, guide, x, 3), bounds.iwae(model, guide, x, 3), bounds.renyi(model, guide, x, 3)):
        assert value.shape == (4,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_reductions_are_stable_for_huge_log_weights_and_many_samples(dtype, sign):
    """K = 10^5 log-weights of magnitude 10^4: the reductions give the exact answer, finite gradients."""
    num_samples = 100_000
    offsets = torch.linspace(0, -30, num_samples, dtype=torch.float64)  # log-weights spread over 30 nats
    log_w = (sign * 1e4 + offsets).unsqueeze(1).to(dtype).requires_grad_()
    exact_value = sign * 1e4 + (torch.logsumexp(offsets, 0) - math.log(num_samples)).item()
    value = estimators.log_mean_exp(log_w, torch.zeros_like(log_w), log_w, "reparam")
    value.sum().backward()
    tolerance = 1e-9 if dtype == torch.float64 else 10 * 1e4 * torch.finfo(dtype).eps  # a few ulps at 1e4
    assert torch.isfinite(log_w.grad).all()
    # the gradient is the softmax weights, summing to 1 up to the rounding of log-weights near 1e4
    assert abs(log_w.grad.sum().item() - 1.0) < tolerance
    assert abs(value.item() - exact_value) < tolerance


def test_bounds_of_a_model_with_huge_log_weights_are_finite():
    """A model with log-weights beyond -10^4 (narrow likelihood, q far from the posterior), K = 10^5."""
    torch.manual_seed(0)
    weight = torch.randn(50, 2)
    model = exact.LinearGaussian(weight, torch.zeros(50), 0.05)
    x = model.marginal().sample((2,))
    guide = families.MeanField(2, batch_shape=(2,))
    with torch.no_grad():
        guide.loc.fill_(3.0)
    log_w, _ = bounds.log_weights(model, guide, x, 1000)
    assert log_w.abs().median() > 1e4
    for value in (bounds.iwae(model, guide, x, 100_000), bounds.renyi(model, guide, x, 100_000, alpha=0.5),
                  bounds.elbo(model, guide, x, 100_000, form="mc"),
                  bounds.iwae(model, guide, x, 1000, estimator="dreg")):
        assert torch.isfinite(value).all()
        value.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in guide.parameters())
        guide.zero_grad()


def test_renyi_interpolates_between_iwae_and_elbo():
    model, x = linear_gaussian()
    guide = _random_family(families.MeanField, 2)
    torch.manual_seed(5)
    iwae = bounds.iwae(model, guide, x, 20)
    torch.manual_seed(5)
    renyi0 = bounds.renyi(model, guide, x, 20, alpha=0.0)
    torch.manual_seed(5)
    near_one = bounds.renyi(model, guide, x, 20, alpha=1 - 1e-7)
    torch.manual_seed(5)
    elbo = bounds.elbo(model, guide, x, 20, form="mc")
    torch.testing.assert_close(renyi0, iwae, rtol=0, atol=1e-12)
    torch.testing.assert_close(near_one, elbo, rtol=0, atol=1e-5)
    # on the same samples L_α decreases in α (the power-mean inequality), not only in expectation
    log_w, _ = bounds.log_weights(model, guide, x, 20)
    by_alpha = [(torch.logsumexp((1 - a) * log_w, 0) - math.log(20)) / (1 - a) for a in (0.0, 0.5, 0.9)]
    assert by_alpha[0] >= by_alpha[1] >= by_alpha[2] >= log_w.mean(0)


# --- bad input -------------------------------------------------------------------------------------------


@pytest.fixture
def problem():
    model, x = linear_gaussian()
    return model, families.MeanField(2, batch_shape=(1,)), x


@pytest.mark.parametrize("num_samples", [0, -3, 2.5, True, "10"])
def test_num_samples_must_be_a_positive_integer(problem, num_samples):
    model, guide, x = problem
    for bound in (bounds.elbo, bounds.iwae, bounds.renyi, bounds.log_weights):
        with pytest.raises(ValueError, match=rf"num_samples must be an integer >= 1, got {num_samples!r}"):
            bound(model, guide, x, num_samples)


def test_non_finite_data_is_refused(problem):
    model, guide, x = problem
    x = x.clone()
    x[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"x must be finite: 1 of its 3 values are NaN or inf"):
        bounds.elbo(model, guide, x)
    x[0, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        bounds.iwae(model, guide, x, 5)


def test_guide_batch_shape_must_match_x(problem):
    model, _, x = problem
    guide = families.MeanField(2, batch_shape=(3,))
    with pytest.raises(ValueError, match=r"batch_shape \(3,\); expected \(1,\) to match x of shape \(1, 3\)"):
        bounds.iwae(model, guide, x, 5)
    with pytest.raises(ValueError, match=r"batch_shape \(\)"):
        bounds.elbo(model, families.MeanField(2), x)


def test_wrong_shapes_are_named(problem):
    model, guide, x = problem
    with pytest.raises(ValueError, match=r"x has shape \(1, 4\) but model.likelihood\(z\) has event_shape \(3,\)"):
        bounds.elbo(model, guide, torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \(B, ...\).*got \(\)"):
        bounds.elbo(model, guide, torch.tensor(1.0))

    def wrong_event_shape(x):  # batch (1,) as it should be, but each z of shape (1, 2) instead of (2,)
        return torch.distributions.Independent(torch.distributions.Normal(torch.zeros(1, 1, 2), 1.0), 2)

    with pytest.raises(ValueError, match=r"has shape \(5, 5, 1\), expected \(K, B\) = \(5, 1\)"):
        bounds.iwae(model, wrong_event_shape, x, 5)


def test_unknown_form_or_estimator_is_named(problem):
    model, guide, x = problem
    with pytest.raises(ValueError, match=r"form must be one of 'analytic', 'mc', 'entropy', got 'exact'"):
        bounds.elbo(model, guide, x, form="exact")
    with pytest.raises(ValueError, match=r"estimator must be one of .* for iwae, got 'magic'"):
        bounds.iwae(model, guide, x, 5, estimator="magic")
    with pytest.raises(ValueError, match=r"for elbo, got 'dreg'"):
        bounds.elbo(model, guide, x, 5, estimator="dreg")
    with pytest.raises(ValueError, match=r"needs form='mc', got form='analytic'"):
        bounds.elbo(model, guide, x, 5, estimator="stl")
    with pytest.raises(ValueError, match=r"num_samples >= 2, got 1"):
        bounds.iwae(model, guide, x, 1, estimator="score")
    with pytest.raises(ValueError, match=r"alpha must be a finite number >= 0, got -1"):
        bounds.renyi(model, guide, x, 5, alpha=-1)


def test_analytic_form_needs_prior_and_likelihood(problem):
    model, guide, x = problem

    class LogJointOnly:
        def log_prob(self, x, z):
            return model.prior().log_prob(z) + model.likelihood(z).log_prob(x)

    with pytest.raises(ValueError, match=r"form='analytic' needs a model with prior\(\) and likelihood\(z\)"):
        bounds.elbo(LogJointOnly(), guide, x)
    torch.manual_seed(2)
    a = bounds.elbo(LogJointOnly(), guide, x, 10, form="mc")
    torch.manual_seed(2)
    b = bounds.elbo(model, guide, x, 10, form="mc")
    torch.testing.assert_close(a, b)


# --- an independent implementation -------------------------------------------------------------------------


def test_elbo_and_iwae_match_pyro():
    """Pyro's Trace_ELBO and RenyiELBO(alpha=0) on the same model and guide estimate the same numbers.
    Two comparisons of independent means at NUM_SE: false failure below 1.4e-5."""
    pyro = pytest.importorskip("pyro")
    import pyro.distributions as dist
    from pyro.infer import RenyiELBO, Trace_ELBO

    model, x = linear_gaussian()
    guide = _random_family(families.MeanField, 2)
    loc, scale = guide.loc.detach()[0], guide.log_scale.detach().exp()[0]
    weight, bias = model.weight.detach(), model.bias.detach()

    def pyro_model():
        z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z @ weight.T + bias, model.noise_scale).to_event(1), obs=x[0])

    def pyro_guide():
        pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    pyro.set_rng_seed(0)
    trace = Trace_ELBO(num_particles=20_000, vectorize_particles=True)
    pyro_elbo = torch.tensor([-trace.loss(pyro_model, pyro_guide) for _ in range(10)])
    ours = bounds.log_weights(model, guide, x, 200_000)[0].detach()[:, 0]
    diff, se = ours.mean() - pyro_elbo.mean(), math.hypot(mean_and_stderr(ours)[1].item(),
                                                          pyro_elbo.std().item() / math.sqrt(10))
    assert abs(diff) < NUM_SE * se, f"ELBO: ours {ours.mean()} vs Pyro {pyro_elbo.mean()} (se {se})"

    k, reps = 10, 2000
    renyi = RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True)
    pyro_iwae = torch.tensor([-renyi.loss(pyro_model, pyro_guide) for _ in range(reps)])
    many = families.MeanField(2, batch_shape=(reps,))
    with torch.no_grad():
        many.loc.copy_(guide.loc.expand(reps, -1))
        many.log_scale.copy_(guide.log_scale.expand(reps, -1))
    ours_iwae = bounds.iwae(model, many, x.expand(reps, -1), k).detach()
    diff = ours_iwae.mean() - pyro_iwae.mean()
    se = math.hypot(mean_and_stderr(ours_iwae)[1].item(), mean_and_stderr(pyro_iwae)[1].item())
    assert abs(diff) < NUM_SE * se, f"IWAE_10: ours {ours_iwae.mean()} vs Pyro {pyro_iwae.mean()} (se {se})"
