"""Neural topic models (ProdLDA, NVDM) and the multinomial head: their mathematics against exact values, the
no-leak property of evaluation mode, the bounds' order, shapes, and the data they refuse."""

import math

import pytest
import torch
from torch.distributions import Multinomial

from elbo import bounds
from elbo.errors import InputError
from elbo.likelihoods import MultinomialLikelihood, log_multinomial_coefficient
from elbo.models.topics.config import TopicConfig
from elbo.models.topics.model import NVDM, ProdLDA, dirichlet_laplace, make_topic_model
from helpers import NUM_SE

VOCAB = 30


def _counts(num_docs, vocab=VOCAB, *, seed=0, rate=0.5):
    """Poisson word counts, every document with at least one word (word 0 gets one more)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.poisson(torch.full((num_docs, vocab), rate), generator=generator)
    x[:, 0] += 1
    return x


def _model(kind="prodlda", **fields):
    torch.manual_seed(0)
    values = dict(model=kind, num_topics=5, hidden_dims=(16, 16), vocab_size=VOCAB)
    return make_topic_model(TopicConfig(**(values | fields)))


# ---- the multinomial head


def test_multinomial_head_plus_coefficient_is_torchs_multinomial_for_equal_length_documents():
    """For documents of one length N, log_prob + log N!/Π x_w! = Multinomial(N, logits).log_prob to 1e-10 (float64);
    the two differ by exactly the coefficient, for K samples of logits against one batch."""
    generator = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(4, 6, 9, dtype=torch.float64, generator=generator)
    total = 20
    probs = torch.softmax(torch.randn(6, 9, dtype=torch.float64, generator=generator), -1)
    x = Multinomial(total, probs=probs).sample()  # (6, 9), each row sums to 20
    head = MultinomialLikelihood()(logits)
    assert head.batch_shape == (4, 6) and head.event_shape == (9,)
    reference = Multinomial(total_count=total, logits=logits).log_prob(x)
    coefficient = log_multinomial_coefficient(x)
    assert coefficient.shape == (6,)
    torch.testing.assert_close(head.log_prob(x) + coefficient, reference, rtol=0, atol=1e-10)
    torch.testing.assert_close(reference - head.log_prob(x), coefficient.expand(4, 6), rtol=0, atol=1e-10)
    torch.testing.assert_close(head.mean, torch.softmax(logits, -1), rtol=0, atol=1e-15)


def test_multinomial_head_scores_documents_of_any_length_and_its_coefficient_by_hand():
    logits = torch.tensor([[0.0, 1.0, -2.0]], dtype=torch.float64)
    x = torch.tensor([[2.0, 0.0, 1.0], [0.0, 5.0, 0.0]], dtype=torch.float64)  # lengths 3 and 5
    log_p = torch.log_softmax(logits, -1)[0]
    expected = torch.stack([2 * log_p[0] + log_p[2], 5 * log_p[1]])
    torch.testing.assert_close(MultinomialLikelihood()(logits).log_prob(x), expected, rtol=0, atol=1e-14)
    # 3!/(2! 1!) = 3, 5!/5! = 1
    torch.testing.assert_close(log_multinomial_coefficient(x), torch.tensor([math.log(3), 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-12)


def test_multinomial_output_bias_is_the_log_mean_word_frequency_clamped():
    mean = torch.tensor([0.0, 1.0, 3.0])
    torch.testing.assert_close(MultinomialLikelihood().output_bias(mean),
                               torch.tensor([math.log(1e-8), math.log(0.25), math.log(0.75)]))


@pytest.mark.parametrize("x, message", [
    ([[1.0, 2.0], [math.nan, 1.0]], r"1 NaN or infinite word counts \(first in document 1\)"),
    ([[1.0, 2.0], [1.0, -1.0], [-2.0, 3.0]], r"2 values are negative \(first in document 1\)"),
    ([[1.0, 2.0], [1.0, 1.0], [0.5, 3.0]], r"1 values are not whole numbers \(first in document 2\)"),
    ([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]], r"2 documents have no words \(first: document 1\)"),
])
def test_multinomial_head_refuses_what_is_not_word_counts(x, message):
    head = MultinomialLikelihood()
    head.check(torch.tensor([[0.0, 3.0], [2.0, 0.0]]))
    with pytest.raises(InputError, match=message):
        head.check(torch.tensor(x))


# ---- ProdLDA's prior


def test_laplace_prior_moments_are_the_formulas_symmetric_and_asymmetric():
    """α = 0.3, K = 5: μ = 0 and σ² = (1/α)(1 - 2/K) + (1/K²)(K/α) = (1/α)(1 - 1/K) = 8/3. Asymmetric α = (1, 2, 4):
    μ = log α - mean log α = (-log 2, 0, log 2), σ²_k = (1/α_k)/3 + (1 + 1/2 + 1/4)/9."""
    loc, var = dirichlet_laplace(torch.full((5,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(loc, torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(var, torch.full((5,), 8 / 3, dtype=torch.float64), rtol=0, atol=1e-14)
    alpha = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    loc, var = dirichlet_laplace(alpha)
    torch.testing.assert_close(loc, torch.tensor([-math.log(2), 0.0, math.log(2)], dtype=torch.float64),
                               rtol=0, atol=1e-15)
    expected = torch.tensor([1 / 3 + 1.75 / 9, 1 / 6 + 1.75 / 9, 1 / 12 + 1.75 / 9], dtype=torch.float64)
    torch.testing.assert_close(var, expected, rtol=0, atol=1e-15)
    # its centre is the Dirichlet's mode in the softmax basis: softmax(μ) = α / Σα exactly
    torch.testing.assert_close(torch.softmax(loc, -1), alpha / alpha.sum(), rtol=0, atol=1e-15)


def test_prodlda_prior_is_the_laplace_approximation_and_its_softmax_mean_is_near_the_dirichlets():
    """The model's prior() is N(μ, σ²) of its config's α. And, as a check of what the approximation means: for
    α = (5, 10, 20) the mean of softmax(z), z ~ N(μ, σ²), is α/Σα up to the approximation's own error (measured
    0.0065 at most with 4e5 draws), well inside 0.01; the Monte Carlo standard error with 1e5 draws is below 3e-4,
    so 0.01 is the approximation's error plus more than 10 standard errors."""
    model = _model(alpha=0.3)
    prior = model.prior()
    assert prior.event_shape == (5,) and prior.batch_shape == ()
    torch.testing.assert_close(prior.mean, torch.zeros(5))
    torch.testing.assert_close(prior.variance, torch.full((5,), 8 / 3))
    alpha = torch.tensor([5.0, 10.0, 20.0], dtype=torch.float64)
    loc, var = dirichlet_laplace(alpha)
    generator = torch.Generator().manual_seed(2)
    theta = torch.softmax(loc + var.sqrt() * torch.randn(100000, 3, dtype=torch.float64, generator=generator), -1)
    standard_error = theta.std(0) / math.sqrt(len(theta))
    assert float(standard_error.max()) < 3e-4
    assert float((theta.mean(0) - alpha / alpha.sum()).abs().max()) < 0.01


# ---- the models


@pytest.mark.parametrize("kind", ["prodlda", "nvdm"])
def test_shapes_for_k_samples_of_b_documents(kind):
    model = _model(kind)
    x = _counts(6)
    model.check_data(x)
    q = model.guide(x)
    assert isinstance(model, ProdLDA if kind == "prodlda" else NVDM)
    assert q.batch_shape == (6,) and q.event_shape == (5,) and model.latent_dims == (5,)
    for train in (True, False):
        model.train(train)
        z = model.guide(x).rsample((4,))
        likelihood = model.likelihood(z)
        assert z.shape == (4, 6, 5) and likelihood.batch_shape == (4, 6) and likelihood.event_shape == (VOCAB,)
        assert likelihood.log_prob(x).shape == (4, 6)
        assert bounds.elbo(model, model.guide, x, 3, form="analytic").shape == (6,)
        assert bounds.iwae(model, model.guide, x, 3).shape == (6,)
    assert model.topic_words().shape == (5, VOCAB)
    torch.testing.assert_close(model.topic_words(), model.decoder.weight.T)
    encoder = {id(p) for p in model.encoder_parameters()}
    assert encoder and encoder < {id(p) for p in model.parameters()}


def test_training_gradients_reach_encoder_and_decoder():
    model = _model()
    x = _counts(8)
    (-bounds.elbo(model, model.guide, x, 2, form="analytic").mean()).backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())


@pytest.mark.parametrize("kind", ["prodlda", "nvdm"])
def test_eval_mode_is_deterministic_and_a_documents_score_ignores_its_batch(kind):
    """In eval mode batch norm uses running statistics and dropout is off: q(z|x) of document 0 and its ELBO
    (the same noise: same seed, same batch size) are the same whichever documents share its batch. In training mode
    batch norm does use the batch (ProdLDA), which is what the eval check guards against."""
    model = _model(kind)
    x = _counts(12)
    model.train()
    for _ in range(3):  # move the running statistics off their start
        bounds.elbo(model, model.guide, x[:8], 2, form="analytic")
    model.eval()
    batch_a, batch_b = x[:5], torch.cat([x[:1], x[8:12]])
    q_a, q_b = model.guide(batch_a), model.guide(batch_b)
    torch.testing.assert_close(q_a.mean[0], q_b.mean[0], rtol=0, atol=0)
    torch.testing.assert_close(q_a.stddev[0], q_b.stddev[0], rtol=0, atol=0)
    z = torch.randn(3, 5, 5)
    z_b = torch.cat([z[:, :1], torch.randn(3, 4, 5)], 1)
    log_p_a, log_p_b = model.likelihood(z).log_prob(batch_a), model.likelihood(z_b).log_prob(batch_b)
    torch.testing.assert_close(log_p_a[:, 0], log_p_b[:, 0], rtol=0, atol=1e-6)
    scores = []
    for batch in (batch_a, batch_a, batch_b):
        torch.manual_seed(3)
        scores.append(bounds.elbo(model, model.guide, batch, 4, form="analytic"))
    torch.testing.assert_close(scores[0], scores[1], rtol=0, atol=0)  # deterministic
    torch.testing.assert_close(scores[0][0], scores[2][0], rtol=0, atol=1e-5)  # batch-independent
    if kind == "prodlda":
        model.train()
        assert not torch.allclose(model.guide(batch_a).mean[0], model.guide(batch_b).mean[0])


@pytest.mark.parametrize("kind", ["prodlda", "nvdm"])
def test_elbo_is_at_most_iwae_on_average(kind):
    """L_1 ≤ L_K in expectation: for a random model in eval mode, the mean over 40 documents of IWAE-64 minus the
    ELBO (64 draws, closed-form KL) is positive by more than 3 standard errors of that mean."""
    model = _model(kind).eval()
    x = _counts(40, seed=4)
    torch.manual_seed(5)
    with torch.no_grad():
        gap = bounds.iwae(model, model.guide, x, 64) - bounds.elbo(model, model.guide, x, 64, form="analytic")
    assert float(gap.mean()) > 3 * float(gap.std() / math.sqrt(len(gap)))


def test_nvdm_init_from_data_starts_the_decoder_at_the_word_frequencies():
    model = _model("nvdm")
    x = _counts(20)
    model.init_from_data(x)
    frequencies = x.mean(0) / x.mean(0).sum()
    torch.testing.assert_close(model.likelihood(torch.zeros(1, 5)).mean[0], frequencies.clamp_min(1e-8)
                               / frequencies.clamp_min(1e-8).sum())
    prior = model.prior()
    torch.testing.assert_close(prior.mean, torch.zeros(5), rtol=0, atol=0)
    torch.testing.assert_close(prior.stddev, torch.ones(5), rtol=0, atol=0)


def test_check_data_refuses_wrong_shapes_dtypes_and_counts():
    model = _model()
    model.check_data(torch.zeros(0, VOCAB))  # an empty split
    with pytest.raises(InputError, match=rf"x must have shape \(N, {VOCAB}\).*got \(4, {VOCAB + 1}\)"):
        model.check_data(torch.ones(4, VOCAB + 1))
    with pytest.raises(InputError, match=r"x must have shape .*got \(30,\)"):
        model.check_data(torch.ones(VOCAB))
    with pytest.raises(InputError, match="floating-point tensor of word counts, got dtype torch.int64"):
        model.check_data(torch.ones(2, VOCAB, dtype=torch.int64))
    x = _counts(3)
    x[2, 4] = 0.5
    with pytest.raises(InputError, match=r"not whole numbers \(first in document 2\)"):
        model.check_data(x)


def test_a_config_without_a_vocabulary_or_with_one_topic_is_refused():
    with pytest.raises(InputError, match="vocab_size is None: it comes from the data set") as error:
        make_topic_model(TopicConfig())
    assert error.value.argument == "vocab_size"
    with pytest.raises(InputError, match="ProdLDA needs num_topics >= 2"):
        make_topic_model(TopicConfig(num_topics=1, vocab_size=VOCAB))
    assert isinstance(make_topic_model(TopicConfig(model="nvdm", num_topics=1, vocab_size=VOCAB)), NVDM)


def test_the_dirichlet_vae_s_kl_is_the_exact_dirichlet_kl():
    """The ELBO's closed-form KL(q(θ|x) ‖ Dirichlet(α)) against the Monte Carlo mean of log q(θ) - log p(θ) over
    20,000 draws of q, for each of 6 documents, within NUM_SE standard errors (seed 0); and the ELBO's analytic
    form is its likelihood term minus exactly that KL."""
    from elbo.models.topics.model import DirichletVAE

    torch.manual_seed(0)
    model = DirichletVAE(TopicConfig(model="dirichlet", num_topics=4, vocab_size=9, alpha=0.7, dropout=0.0)).eval()
    x = torch.poisson(torch.full((6, 9), 1.5)) + torch.eye(9)[:6]
    q, p = model.guide(x), model.prior()
    exact = torch.distributions.kl_divergence(q, p)
    theta = q.sample((20_000,))
    log_ratio = q.log_prob(theta) - p.log_prob(theta)
    stderr = log_ratio.std(0) / 20_000 ** 0.5
    assert ((log_ratio.mean(0) - exact).abs() < NUM_SE * stderr).all(), (log_ratio.mean(0), exact, stderr)
    torch.manual_seed(1)
    analytic = bounds.elbo(model, model.guide, x, 1, form="analytic")
    torch.manual_seed(1)
    reconstruction = model.likelihood(model.guide(x).rsample((1,))).log_prob(x)[0]
    torch.testing.assert_close(analytic, reconstruction - exact)
