"""LDA by stochastic variational inference (elbo.models.topics.lda) and synthetic LDA corpora (.synthetic).

The algorithm is checked against scikit-learn's ``LatentDirichletAllocation`` (same initial λ, same minibatches, same
draws of the initial γ), against closed forms (one topic: the bound is the exact log-likelihood; two topics: the
evidence by quadrature), and on corpora drawn from LDA itself.

scikit-learn's Cython ``psi`` (``sklearn/decomposition/_online_lda_fast.pyx``) stops its asymptotic series at
``x⁻⁶`` once the recurrence has taken ``x`` to ≥ 6, so it is off by up to 2.4e-9; ``torch.special.digamma`` is
exact to double precision. With ``sklearn_psi`` below put in place of torch's, the two agree to 1e-12; with
torch's, to the relative tolerances the tests state (1e-5: the difference goes through up to 100 fixed-point
updates and the ρ-weighted average of several minibatches).
"""

import gzip
import math

import numpy as np
import pytest
import torch
from scipy import integrate
from sklearn.decomposition import LatentDirichletAllocation

from elbo.errors import InputError
from elbo.models.topics import native
from elbo.models.topics.datasets import load_bag_of_words
from elbo.models.topics.lda import (
    OnlineLDA,
    SparseBatch,
    bound,
    dirichlet_expectation,
    document_bounds,
    document_elbos,
    expected_log_topics,
    learning_rate,
    local_step,
    perplexity,
    topic_bound,
    topics,
)
from elbo.models.topics.synthetic import (
    generate_lda_corpus,
    match_topics,
    topic_distances,
    write_lda_corpus,
    write_vocabulary,
)


def sklearn_psi(x: torch.Tensor) -> torch.Tensor:
    """scikit-learn's digamma: ψ(x) = ψ(x + n) - Σ_{i<n} 1/(x + i) up to x + n ≥ 6, then
    log y - 1/(2y) - 1/(12y²) + 1/(120y⁴) - 1/(252y⁶)."""
    result, x = torch.zeros_like(x), x.clone()
    for _ in range(6):
        small = x < 6
        result, x = torch.where(small, result - 1 / x, result), torch.where(small, x + 1, x)
    r = 1 / x
    return result + x.log() - 0.5 * r - r * r * (1 / 12 - r * r * (1 / 120 - r * r / 252))


@pytest.fixture(scope="module")
def corpus():
    """600 documents (500 to train, 100 held out) of 60 words over 120 words, from 6 topics."""
    return generate_lda_corpus(600, 120, 6, words_per_document=60, alpha=0.2, eta=0.05, seed=11)


def sklearn_lda(num_topics, **settings):
    return LatentDirichletAllocation(n_components=num_topics, learning_method="online", n_jobs=1, **settings)


def with_topics(model, lam):
    """A scikit-learn model whose components_ are ``lam``, as its own fit would leave them."""
    model.components_ = lam.numpy().copy()
    model.exp_dirichlet_component_ = np.exp(dirichlet_expectation(lam).numpy())
    model.doc_topic_prior_ = model.doc_topic_prior
    model.topic_word_prior_ = model.topic_word_prior
    model.n_features_in_ = lam.shape[1]
    return model


# --- the local step ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("random_init", [False, True])
def test_local_step_equals_sklearn_e_step(corpus, random_init):
    x = corpus.dense()[:200]
    lam = torch.from_numpy(np.random.RandomState(3).gamma(100.0, 0.01, (6, 120)))
    model = with_topics(sklearn_lda(6, doc_topic_prior=0.2, topic_word_prior=0.05), lam)
    model.random_state_ = np.random.RandomState(7)
    gamma_sk, sstats_sk = model._e_step(x.numpy(), cal_sstats=True, random_init=random_init)
    start = torch.from_numpy(np.random.RandomState(7).gamma(100.0, 0.01, (200, 6))) if random_init else None
    gamma, sstats = local_step(x, expected_log_topics(lam).exp(), 0.2, initial_gamma=start)
    torch.testing.assert_close(gamma, torch.from_numpy(gamma_sk), rtol=1e-5, atol=0)
    torch.testing.assert_close(sstats, torch.from_numpy(sstats_sk), rtol=1e-5, atol=1e-12)
    # the statistics sum to the corpus's words (Σ_k φ_dwk = 1) but for the ε in φ's normalisers
    assert float(sstats.sum()) == pytest.approx(float(x.sum()), rel=1e-9)


def test_local_step_equals_sklearn_to_1e12_with_sklearn_psi(corpus, monkeypatch):
    x = corpus.dense()[:200]
    lam = torch.from_numpy(np.random.RandomState(3).gamma(100.0, 0.01, (6, 120)))
    model = with_topics(sklearn_lda(6, doc_topic_prior=0.2, topic_word_prior=0.05), lam)
    monkeypatch.setattr(torch.special, "digamma", sklearn_psi)
    model.exp_dirichlet_component_ = np.exp(dirichlet_expectation(lam).numpy())
    gamma_sk, sstats_sk = model._e_step(x.numpy(), cal_sstats=True, random_init=False)
    gamma, sstats = local_step(x, torch.from_numpy(model.exp_dirichlet_component_), 0.2, kernel="torch")
    torch.testing.assert_close(gamma, torch.from_numpy(gamma_sk), rtol=1e-12, atol=0)
    torch.testing.assert_close(sstats, torch.from_numpy(sstats_sk), rtol=1e-12, atol=1e-15)


def test_each_document_stops_on_its_own_mean_change():
    """A document's γ is the same alone or in a batch, where others stop earlier or later (frozen, not iterated)."""
    data = generate_lda_corpus(40, 30, 4, words_per_document=25, lengths="poisson", seed=2)
    exp_elog_beta = expected_log_topics(torch.from_numpy(np.random.RandomState(0).gamma(100.0, 0.01, (4, 30)))).exp()
    together = local_step(data.documents, exp_elog_beta, 0.25, tol=1e-4)[0]
    for d in (0, 17, 39):
        alone = local_step(data.documents.select(torch.arange(40) == d), exp_elog_beta, 0.25, tol=1e-4)[0]
        torch.testing.assert_close(together[d:d + 1], alone, rtol=1e-13, atol=0)
    # max_iter=0 leaves the start; the updates stop after max_iter
    torch.testing.assert_close(local_step(data.documents, exp_elog_beta, 0.25, max_iter=0)[0], torch.ones(40, 4))
    one = local_step(data.documents, exp_elog_beta, 0.25, max_iter=1)[0]
    assert not torch.allclose(one, together)


def test_local_step_reaches_the_fixed_point_and_float32_follows_float64(corpus):
    x = corpus.documents
    exp_elog_beta = expected_log_topics(corpus.topics * 1000 + 0.05).exp()  # near the truth: well conditioned
    gamma = local_step(x, exp_elog_beta, 0.2, tol=1e-10, max_iter=1000)[0]
    again = local_step(x, exp_elog_beta, 0.2, initial_gamma=gamma, max_iter=1)[0]
    torch.testing.assert_close(again, gamma, rtol=1e-8, atol=0)
    single = local_step(x, exp_elog_beta.float(), 0.2, tol=1e-10, max_iter=1000)[0]
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), gamma, rtol=1e-5, atol=1e-5)


# --- the global step ---------------------------------------------------------------------------------------------

def test_online_updates_equal_sklearn_partial_fit(corpus):
    x = corpus.dense()[:500]
    model = OnlineLDA(6, 120, total_documents=500, alpha=0.2, eta=0.05, tau0=4.0, kappa=0.8, seed=5)
    peer = sklearn_lda(6, doc_topic_prior=0.2, topic_word_prior=0.05, learning_offset=4.0, learning_decay=0.8,
                       total_samples=500, batch_size=100, random_state=5)
    # the same seed draws the same initial λ (scikit-learn draws it at its first partial_fit)
    peer.partial_fit(x[:100].numpy())
    model.update(x[:100])
    torch.testing.assert_close(model.lam, torch.from_numpy(peer.components_), rtol=1e-5, atol=0)
    for start in range(100, 500, 100):
        peer.partial_fit(x[start:start + 100].numpy())
        gamma = model.update(SparseBatch.from_dense(x[start:start + 100]))
        assert gamma.shape == (100, 6)
    assert model.num_updates == 5 == peer.n_batch_iter_ - 1
    torch.testing.assert_close(model.lam, torch.from_numpy(peer.components_), rtol=1e-5, atol=0)
    torch.testing.assert_close(model.exp_elog_beta, torch.from_numpy(peer.exp_dirichlet_component_), rtol=1e-5,
                               atol=0)


def test_online_updates_equal_sklearn_to_1e10_with_sklearn_psi(corpus, monkeypatch):
    monkeypatch.setattr(torch.special, "digamma", sklearn_psi)
    monkeypatch.setitem(native._state, "library", None)  # the tensor code, whose ψ is replaced
    monkeypatch.setitem(native._state, "reason", "the test replaces torch's digamma")
    x = corpus.dense()[:300]
    model = OnlineLDA(6, 120, total_documents=1000, seed=1)
    peer = sklearn_lda(6, total_samples=1000, batch_size=60, random_state=1).partial_fit(x.numpy())
    for start in range(0, 300, 60):
        model.update(x[start:start + 60])
    torch.testing.assert_close(model.lam, torch.from_numpy(peer.components_), rtol=1e-10, atol=0)


def test_one_update_is_the_weighted_average_of_lambda_and_its_target():
    data = generate_lda_corpus(50, 20, 3, words_per_document=30, seed=4)
    model = OnlineLDA(3, 20, total_documents=1000, alpha=0.3, eta=0.1, tau0=2.0, kappa=0.6)
    before, start = model.lam.clone(), torch.full((50, 3), 1.5)
    sstats = local_step(data.documents, model.exp_elog_beta, 0.3, initial_gamma=start)[1]
    model.update(data.documents, initial_gamma=start)
    rho = (2.0 + 1) ** -0.6
    assert learning_rate(1, tau0=2.0, kappa=0.6) == pytest.approx(rho, rel=1e-15)
    torch.testing.assert_close(model.lam, (1 - rho) * before + rho * (0.1 + 1000 / 50 * sstats), rtol=1e-12, atol=0)
    torch.testing.assert_close(topics(model.lam).sum(1), torch.ones(3))


def test_float32_updates_follow_float64(corpus):
    x = corpus.dense()[:500]
    double, single = (OnlineLDA(6, 120, total_documents=500, seed=0, dtype=dtype)
                      for dtype in (torch.float64, torch.float32))
    for start in range(0, 500, 100):
        double.update(x[start:start + 100])
        single.update(x[start:start + 100])
    assert single.lam.dtype == torch.float32
    held_out = corpus.dense()[500:]
    assert single.perplexity(held_out) == pytest.approx(double.perplexity(held_out), rel=1e-3)


# --- bounds and perplexity ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(corpus):
    return sklearn_lda(6, doc_topic_prior=0.2, topic_word_prior=0.05, total_samples=500, batch_size=100,
                       max_iter=3, random_state=0).fit(corpus.dense()[:500].numpy())


def test_bound_equals_sklearn_score(corpus, fitted):
    x = corpus.dense()[500:]
    gamma = torch.from_numpy(fitted.transform(x.numpy(), normalize=False))
    lam = torch.from_numpy(fitted.components_)
    assert float(bound(x, gamma, lam, 0.2, 0.05)) == pytest.approx(fitted.score(x.numpy()), rel=1e-9)
    # the bound is its documents' terms plus the topics' term
    parts = document_bounds(x, gamma, expected_log_topics(lam), 0.2).sum() + topic_bound(lam, 0.05)
    assert float(parts) == pytest.approx(float(bound(x, gamma, lam, 0.2, 0.05)), rel=1e-12)


@pytest.mark.parametrize("sub_sampling", [False, True])
def test_perplexity_equals_sklearn(corpus, fitted, sub_sampling):
    x = corpus.dense()[500:]
    ours = perplexity(SparseBatch.from_dense(x), torch.from_numpy(fitted.components_), 0.2, 0.05,
                      total_documents=500 if sub_sampling else None)
    assert ours == pytest.approx(fitted.perplexity(x.numpy(), sub_sampling=sub_sampling), rel=1e-6)


def test_with_one_topic_the_document_bound_is_the_exact_log_likelihood():
    """K = 1: θ = 1 and z are certain, KL = 0, so L_d = Σ_w n_dw log β_w exactly (no multinomial coefficient)."""
    data = generate_lda_corpus(20, 15, 1, words_per_document=12, seed=3)
    beta = torch.distributions.Dirichlet(torch.ones(15)).sample((1,))
    exact = (data.dense() * beta.log()).sum(1)
    torch.testing.assert_close(document_elbos(data.documents, beta * 1e3, 0.5), exact, rtol=1e-12, atol=1e-12)


def test_document_elbo_is_a_lower_bound_on_the_evidence_by_quadrature():
    """K = 2, θ = (t, 1 - t) with t ~ Beta(α, α): log p(w | β) = log ∫ Π_w (t β_1w + (1-t) β_2w)^n_w Beta(t) dt."""
    data = generate_lda_corpus(12, 8, 2, words_per_document=15, alpha=0.5, eta=0.3, seed=9)
    beta, alpha = data.topics, 0.5
    elbos = document_elbos(data.documents, beta * 1e6, alpha, tol=1e-10, max_iter=1000)
    for d, counts in enumerate(data.dense()):
        def likelihood(t, counts=counts, elbo=float(elbos[d])):
            """p(w | θ = (t, 1 - t), β) / exp(ELBO); quad's weight="alg" multiplies by t^(α-1) (1-t)^(α-1)."""
            return math.exp(float((counts * torch.log(t * beta[0] + (1 - t) * beta[1])).sum()) - elbo)
        scaled, _ = integrate.quad(likelihood, 0, 1, weight="alg", wvar=(alpha - 1, alpha - 1), limit=200)
        log_evidence = math.log(scaled) + float(elbos[d]) - 2 * math.lgamma(alpha) + math.lgamma(2 * alpha)
        assert float(elbos[d]) <= log_evidence + 1e-9
        assert log_evidence - float(elbos[d]) < 3.0  # mean field is loose, not lost


def test_point_and_expected_log_per_document_bounds(corpus, fitted):
    x = corpus.documents.select(torch.arange(600) >= 500)
    lam = torch.from_numpy(fitted.components_)
    point = document_elbos(x, lam, 0.2)
    expected = document_elbos(x, lam, 0.2, topics="expected_log")
    # the scikit-learn terms: its bound less the topics' term, from its own γ
    gamma = local_step(x, expected_log_topics(lam).exp(), 0.2)[0]
    assert float(expected.sum()) == pytest.approx(float(bound(x, gamma, lam, 0.2, 0.05) - topic_bound(lam, 0.05)),
                                                  rel=1e-12)
    # E[β] ≥ exp(E[log β]) word by word, so the point-topic bound is the larger at any one γ
    assert (document_bounds(x, gamma, topics(lam).log(), 0.2) >= document_bounds(
        x, gamma, expected_log_topics(lam), 0.2)).all()
    assert float(point.mean()) > float(expected.mean())


# --- synthetic corpora -------------------------------------------------------------------------------------------

def test_the_same_seed_gives_the_same_corpus_and_another_seed_another():
    first, second = (generate_lda_corpus(300, 40, 4, seed=8, block_size=128) for _ in range(2))
    torch.testing.assert_close(first.dense(), second.dense(), rtol=0, atol=0)
    torch.testing.assert_close(first.topics, second.topics, rtol=0, atol=0)
    other = generate_lda_corpus(300, 40, 4, seed=9, block_size=128)
    assert not torch.equal(first.dense(), other.dense())
    assert first.topics.shape == (4, 40) and first.proportions.shape == (300, 4)
    torch.testing.assert_close(first.topics.sum(1), torch.ones(4))


def test_document_lengths_fixed_and_poisson():
    fixed = generate_lda_corpus(500, 30, 3, words_per_document=40, seed=1)
    assert torch.equal(fixed.documents.lengths, torch.full((500,), 40.0))
    drawn = generate_lda_corpus(4000, 30, 3, words_per_document=40, lengths="poisson", seed=1).documents.lengths
    assert drawn.min() >= 1
    # 1 + Poisson(39): mean 40, variance 39, and the sample variance's variance (λ + 2λ²) / n for a Poisson(λ);
    # within 4.5 standard errors (false failure < 1e-5 per check)
    assert abs(float(drawn.mean()) - 40) < 4.5 * math.sqrt(39 / 4000)
    assert abs(float(drawn.var()) - 39) < 4.5 * math.sqrt((39 + 2 * 39**2) / 4000)
    # 1 + Poisson(1): P(N = 1) = e⁻¹, P(N = 2) = e⁻¹ (a shifted Poisson, not a Poisson with zeros moved to 1)
    short = generate_lda_corpus(4000, 30, 3, words_per_document=2, lengths="poisson", seed=2).documents.lengths
    for length in (1, 2):
        assert abs(float((short == length).double().mean()) - math.exp(-1)) < 4.5 * math.sqrt(0.2325 / 4000)


def test_word_frequencies_match_the_mixture_of_the_true_topics():
    """Given θ and β, document d's counts are Multinomial(N, θ_d β): each word's corpus total has mean
    Σ_d N p_dw and variance Σ_d N p_dw (1 - p_dw) (documents independent). All 30 within 4.5 standard errors:
    false failure ≈ 30 · 6.8e-6 = 2e-4."""
    data = generate_lda_corpus(3000, 30, 4, words_per_document=50, alpha=0.3, eta=0.2, seed=6)
    p = data.proportions @ data.topics  # (D, V)
    mean, variance = (50 * p).sum(0), (50 * p * (1 - p)).sum(0)
    z = (data.dense().sum(0) - mean) / variance.sqrt()
    assert float(z.abs().max()) < 4.5
    assert float(z.square().mean()) == pytest.approx(1.0, abs=4.5 * math.sqrt(2 / 30))


def test_written_corpus_reads_back_as_the_generated_one(tmp_path):
    kwargs = dict(words_per_document=20, lengths="poisson", seed=3, block_size=70)
    truth = generate_lda_corpus(250, 40, 5, **kwargs)
    write_vocabulary(tmp_path / "vocabulary.txt", 40)
    for name in ("train.feat", "train.feat.gz"):
        topics_written = write_lda_corpus(tmp_path / name, 250, 40, 5, **kwargs)
        torch.testing.assert_close(topics_written, truth.topics, rtol=0, atol=0)
        read = load_bag_of_words(tmp_path / name, tmp_path / "vocabulary.txt", test_path=tmp_path / name)
        torch.testing.assert_close(read.train.double(), truth.dense(), rtol=0, atol=0)
    with gzip.open(tmp_path / "train.feat.gz", "rt") as text:
        lines = text.read().split("\n")
    assert len(lines) == 251 and lines[-1] == "" and all(line.startswith("0 ") for line in lines[:-1])


# --- matching topics ---------------------------------------------------------------------------------------------

def test_a_permuted_copy_of_the_truth_is_matched_exactly():
    truth = generate_lda_corpus(1, 50, 7, seed=0).topics
    order = torch.tensor([3, 6, 0, 1, 5, 2, 4])
    for metric in ("hellinger", "cosine"):
        match = match_topics(truth[order], truth, metric=metric)
        assert match.distance == pytest.approx(0.0, abs=1e-12)
        assert torch.equal(order[match.assignment], torch.arange(7))  # estimated topic assignment[k] is true k
    extra = torch.cat([torch.full((2, 50), 1 / 50), truth[order]])  # more estimated topics than true ones
    assert torch.equal(match_topics(extra, truth).assignment, torch.argsort(order) + 2)


def test_hellinger_and_cosine_distances_of_known_distributions():
    # Bernoulli(a) and Bernoulli(b): H² = 1 - √(ab) - √((1-a)(1-b))
    a, b = 0.3, 0.8
    p, q = torch.tensor([[a, 1 - a]]), torch.tensor([[b, 1 - b]])
    expected = math.sqrt(1 - math.sqrt(a * b) - math.sqrt((1 - a) * (1 - b)))
    assert float(topic_distances(p, q)) == pytest.approx(expected, rel=1e-12)
    disjoint = topic_distances(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    assert float(disjoint) == pytest.approx(1.0, rel=1e-12)
    # unnormalised weights are normalised first; cosine of (1, 1) and (1, 0) is 1/√2
    assert float(topic_distances(torch.tensor([[2.0, 2.0]]), torch.tensor([[5.0, 0.0]]), metric="cosine")) == \
        pytest.approx(1 - 1 / math.sqrt(2), rel=1e-12)


def test_online_lda_recovers_the_topics_of_a_synthetic_corpus():
    """K = 5, V = 50, 2000 documents of 100 words: 3 passes from 4 initialisations, the lowest training perplexity
    kept (single runs fall into a merged-and-split optimum, as batch VB does too). Over 8 corpora this came
    within 0.052-0.066 mean Hellinger of the truth; the bound is 0.1. Random topics are 0.8 away."""
    data = generate_lda_corpus(2000, 50, 5, words_per_document=100, alpha=0.1, eta=0.05, seed=0)
    x = data.dense()
    runs = []
    for seed in range(4):
        model = OnlineLDA(5, 50, total_documents=2000, alpha=0.1, eta=0.05, seed=seed)
        for _ in range(3):
            for start in range(0, 2000, 100):
                model.update(x[start:start + 100])
        runs.append((model.perplexity(x), match_topics(model.topics(), data.topics).distance))
    assert min(runs)[1] < 0.1
    random_topics = torch.distributions.Dirichlet(torch.full((50,), 0.05)).sample((5,))
    assert match_topics(random_topics, data.topics).distance > 0.5


# --- bad input -------------------------------------------------------------------------------------------------

def test_sparse_batch_from_lists_equals_from_dense_and_selects_rows():
    dense = torch.tensor([[0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 1.0, 0.0]])
    from_lists = SparseBatch.from_lists([[3, 1], [], [0, 2]], [[1, 2], [], [3.0, 1.0]], vocab_size=4)
    for batch in (SparseBatch.from_dense(dense), from_lists):
        torch.testing.assert_close(batch.csr().to_dense(), dense)
        torch.testing.assert_close(batch.lengths, torch.tensor([3.0, 0.0, 4.0]))
    torch.testing.assert_close(from_lists.select(torch.tensor([True, False, True])).csr().to_dense(), dense[[0, 2]])


@pytest.mark.parametrize("call, argument", [
    (lambda: SparseBatch.from_dense(torch.tensor([[1.0, -1.0]])), "x"),
    (lambda: SparseBatch.from_lists([[0, 0]], [[1, 1]], vocab_size=3), "word_ids"),
    (lambda: SparseBatch.from_lists([[5]], [[1]], vocab_size=3), "word_ids"),
    (lambda: SparseBatch.from_lists([[1]], [[1], [2]], vocab_size=3), "counts"),
    (lambda: local_step(torch.ones(2, 3), torch.ones(2, 4), 0.1), "exp_elog_beta"),
    (lambda: local_step(torch.ones(2, 3), torch.ones(2, 3), 0.0), "alpha"),
    (lambda: local_step(torch.ones(2, 3), torch.ones(2, 3), 0.1, tol=-1.0), "tol"),
    (lambda: local_step(torch.ones(2, 3), torch.ones(2, 3), 0.1, initial_gamma=torch.ones(3, 2)), "initial_gamma"),
    (lambda: OnlineLDA(3, 5, total_documents=10, kappa=0.5), "kappa"),
    (lambda: OnlineLDA(3, 5, total_documents=10, tau0=-1.0), "tau0"),
    (lambda: OnlineLDA(3, 5, total_documents=0), "total_documents"),
    (lambda: OnlineLDA(3, 5, total_documents=10, lam=torch.ones(3, 4)), "lam"),
    (lambda: OnlineLDA(3, 5, total_documents=10).update(torch.ones(2, 4)), "batch"),
    (lambda: document_elbos(torch.ones(2, 3), torch.ones(2, 3), 0.1, topics="mean"), "topics"),
    (lambda: bound(torch.ones(2, 3), torch.ones(3, 2), torch.ones(2, 3), 0.1, 0.1), "gamma"),
    (lambda: generate_lda_corpus(10, 5, 2, lengths="uniform"), "lengths"),
    (lambda: generate_lda_corpus(10, 5, 2, alpha=0.0), "alpha"),
    (lambda: match_topics(torch.ones(2, 5), torch.ones(3, 5)), "estimated"),
    (lambda: match_topics(torch.ones(3, 5), torch.ones(3, 5), metric="kl"), "metric"),
])
def test_bad_input_raises_one_line_input_error_naming_the_argument(call, argument):
    with pytest.raises(InputError) as error:
        call()
    assert error.value.argument == argument and "\n" not in str(error.value)

