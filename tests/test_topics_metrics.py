"""The topic model's measurements (elbo.models.topics.metrics) on hand-made data with values worked out by hand."""

import math

import pytest
import torch

from elbo.errors import InputError
from elbo.models.topics.metrics import classification_accuracy, diversity, npmi, perplexities, top_words


def test_uniform_words_give_perplexity_exactly_the_vocabulary_size_both_ways():
    vocab = 2000
    lengths = torch.tensor([5.0, 17.0, 120.0, 1.0])
    result = perplexities(-lengths * math.log(vocab), lengths)
    assert result["corpus"] == pytest.approx(vocab, rel=1e-12)
    assert result["per_document"] == pytest.approx(vocab, rel=1e-12)
    # every document's rate is the same, so neither estimate varies over documents
    assert result["corpus_se"] == pytest.approx(0.0, abs=1e-9)
    assert result["per_document_se"] == pytest.approx(0.0, abs=1e-9)


def test_the_two_perplexities_differ_for_unequal_lengths_as_computed_by_hand():
    # document 1: 2 words at 1 nat each; document 2: 8 words at 3 nats each
    bounds, lengths = torch.tensor([-2.0, -24.0]), torch.tensor([2, 8])
    result = perplexities(bounds, lengths)
    assert result["corpus"] == pytest.approx(math.exp(26 / 10))      # exp(-Σ L / Σ N)
    assert result["per_document"] == pytest.approx(math.exp(2.0))    # exp(mean(1, 3))


def test_standard_errors_match_the_delta_method_worked_by_hand():
    bounds, lengths = torch.tensor([-3.0, -10.0, -4.0]), torch.tensor([1.0, 4.0, 2.0])
    result = perplexities(bounds, lengths)
    # per document: rates 3, 2.5, 2; mean 2.5; sample variance ((0.5)² + 0 + (0.5)²) / 2 = 0.25
    assert result["per_document_se"] == pytest.approx(math.exp(2.5) * math.sqrt(0.25 / 3))
    # corpus: R = 17 / 7; residuals y - R N; SE(R) = sqrt(Σ e² / (D (D - 1))) / mean(N)
    rate = 17 / 7
    residuals = [3 - rate, 10 - 4 * rate, 4 - 2 * rate]
    se_rate = math.sqrt(sum(e * e for e in residuals) / 6) / (7 / 3)
    assert result["corpus_se"] == pytest.approx(math.exp(rate) * se_rate)


def test_standard_errors_agree_with_a_bootstrap_over_documents():
    generator = torch.Generator().manual_seed(0)
    documents = 400
    lengths = torch.randint(20, 300, (documents,), generator=generator).double()
    rates = 6.0 + 0.3 * torch.randn(documents, generator=generator, dtype=torch.float64)
    bounds = -rates * lengths
    result = perplexities(bounds, lengths)
    resample = torch.randint(0, documents, (4000, documents), generator=generator)
    y, n = -bounds[resample], lengths[resample]
    corpus = torch.exp(y.sum(1) / n.sum(1))
    per_document = torch.exp((y / n).mean(1))
    assert result["corpus_se"] == pytest.approx(float(corpus.std()), rel=0.05)
    assert result["per_document_se"] == pytest.approx(float(per_document.std()), rel=0.05)


def test_perplexities_refuse_bad_input_and_give_nan_errors_for_one_document():
    assert math.isnan(perplexities(torch.tensor([-3.0]), torch.tensor([2]))["corpus_se"])
    with pytest.raises(InputError, match="lengths must all be > 0"):
        perplexities(torch.tensor([-3.0, -1.0]), torch.tensor([2, 0]))
    with pytest.raises(InputError, match="same shape"):
        perplexities(torch.tensor([-3.0, -1.0]), torch.tensor([2, 1, 1]))
    with pytest.raises(InputError, match="finite"):
        perplexities(torch.tensor([-3.0, math.nan]), torch.tensor([2, 1]))


def test_top_words_are_the_highest_weighted_ids_in_order():
    weights = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.0],
                            [3.0, -1.0, 2.0, 2.0, 5.0]])
    top = top_words(weights, 3)
    assert top.dtype == torch.long
    assert top.tolist() == [[3, 1, 2], [4, 0, 2]]  # the tie 2.0 / 2.0 keeps the lower id first
    with pytest.raises(InputError, match="n must be"):
        top_words(weights, 6)


# 4 documents over 6 words: a and b occur in documents 0, 1; c in 0, 2; d in 2, 3; e in 0, 1, 2; f in every one
REFERENCE = torch.tensor([
    # a  b  c  d  e  f
    [2, 1, 1, 0, 1, 1],
    [1, 3, 0, 0, 4, 1],
    [0, 0, 5, 1, 1, 1],
    [0, 0, 0, 2, 0, 1],
])
A, B, C, D, E, F = range(6)


def test_npmi_of_pairs_worked_out_by_hand():
    pairs = torch.tensor([[A, B], [A, C], [A, D], [A, E], [A, F], [E, F]])
    values = npmi(pairs, REFERENCE)
    assert values.dtype == torch.float64
    expected = [
        1.0,                                      # always together: log(½ / ¼) / log 2
        0.0,                                      # independent: p(a, c) = ¼ = p(a) p(c)
        -1.0,                                     # never together: the limit
        math.log((1 / 2) / (1 / 2 * 3 / 4)) / math.log(2),  # p(a, e) = ½, p(a) p(e) = 3/8
        0.0,                                      # f is in every document: log(½ / ½) / log 2
        0.0,                                      # p(e, f) = ¾ = p(e) · 1
    ]
    assert values.tolist() == pytest.approx(expected, abs=1e-12)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
def test_npmi_of_a_topic_is_the_mean_over_its_pairs_and_sparse_references_agree():
    topics = torch.tensor([[A, B, C], [B, D, E]])
    # topic 0: (a, b) 1, (a, c) 0, (b, c) 0; topic 1: (b, d) -1, (b, e) as (a, e), (d, e) = log((¼) / (½ · ¾)) / log 4
    ae = math.log(4 / 3) / math.log(2)
    de = math.log((1 / 4) / (1 / 2 * 3 / 4)) / math.log(4)
    expected = [1 / 3, (-1 + ae + de) / 3]
    assert npmi(topics, REFERENCE).tolist() == pytest.approx(expected, abs=1e-12)
    assert npmi(topics, REFERENCE.to_sparse()).tolist() == pytest.approx(expected, abs=1e-12)
    assert npmi(topics, REFERENCE.to_sparse_csr()).tolist() == pytest.approx(expected, abs=1e-12)
    # Lau et al.'s toolkit scores a pair never seen together 0
    assert npmi(topics, REFERENCE, never=0.0).tolist() == pytest.approx([1 / 3, (ae + de) / 3], abs=1e-12)


def test_npmi_gives_one_to_words_in_every_document_and_refuses_repeats():
    everywhere = torch.ones(3, 4, dtype=torch.long)
    assert npmi(torch.tensor([[0, 1, 2]]), everywhere).tolist() == [1.0]
    with pytest.raises(InputError, match="repeat"):
        npmi(torch.tensor([[0, 1, 1]]), everywhere)
    with pytest.raises(InputError, match="word ids from 0 to 4"):
        npmi(torch.tensor([[0, 4]]), everywhere)


def test_npmi_is_fast_at_the_size_of_20_newsgroups():
    generator = torch.Generator().manual_seed(0)
    reference = (torch.rand(11_000, 2_000, generator=generator) < 0.02).to(torch.float32)
    top = torch.stack([torch.randperm(2_000, generator=generator)[:10] for _ in range(50)])
    values = npmi(top, reference)  # one (500, D) x (D, 500) product: well under a second
    assert values.shape == (50,) and torch.isfinite(values).all()
    # independent words: every pair's NPMI is near 0
    assert values.abs().max() < 0.2


def test_diversity_counts_distinct_top_words():
    assert diversity(torch.tensor([[0, 1, 2], [3, 4, 5]])) == 1.0
    assert diversity(torch.tensor([[0, 1, 2], [0, 1, 2]])) == 0.5
    assert diversity(torch.tensor([[0, 1, 2, 3], [3, 4, 0, 5]])) == 6 / 8


def test_classification_accuracy_is_one_on_separable_data():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    proportions = torch.full((60, 3), 0.05)
    proportions[torch.arange(60), labels] = 0.9
    proportions += 0.01 * torch.rand(60, 3, generator=generator)
    accuracy = classification_accuracy(proportions[:40], labels[:40], proportions[40:], labels[40:])
    assert accuracy == 1.0
    wrong = classification_accuracy(proportions[:40], labels[:40], proportions[40:], (labels[40:] + 1) % 3)
    assert wrong == 0.0


def test_perplexities_of_a_one_topic_model_are_its_closed_form_evidence_through_the_evaluation():
    """A topic model with one topic, ``p(x_d) = Mult(x_d | N_d, β)``, has exact evidence. NVDM with its decoder's
    weights at zero and its encoder's outputs at zero is that model (``p(x|z)`` does not depend on ``z``, and
    ``q(z|x) = p(z)``), so every importance weight is ``log p(x_d)`` itself: the ELBO, IWAE-K and both perplexities
    of ``elbo evaluate``'s pipeline must equal the closed form (scipy's multinomial pmf, and
    ``exp(-Σ_d Σ_w n_dw log β_w / Σ_d N_d)``) to float tolerance, whatever the random draws."""
    from types import SimpleNamespace

    from scipy.stats import multinomial

    from elbo.evaluate import evaluate
    from elbo.models.topics import evaluation
    from elbo.models.topics.config import TopicConfig
    from elbo.models.topics.model import make_topic_model

    generator = torch.Generator().manual_seed(3)
    vocab, docs = 12, 40
    beta = torch.distributions.Dirichlet(torch.ones(vocab, dtype=torch.float64)).sample()
    lengths = torch.randint(1, 60, (docs,), generator=generator)
    x = torch.stack([torch.bincount(torch.multinomial(beta, int(n), True, generator=generator), minlength=vocab)
                     for n in lengths]).double()
    torch.manual_seed(0)
    model = make_topic_model(TopicConfig(model="nvdm", num_topics=3, hidden_dims=(8,), vocab_size=vocab)).double()
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.copy_(beta.log())
        for layer in (model.encoder.loc, model.encoder.log_scale):
            layer.weight.zero_()
            layer.bias.zero_()
    model.eval()
    per_point = {}
    result = evaluate(model, x, num_samples=7, iwae_samples=(3,), per_point=per_point)
    words = (x * beta.log()).sum(1)  # log p(x_d) without the multinomial coefficient, as the perplexities use
    exact = torch.tensor([float(multinomial.logpmf(row.numpy(), int(row.sum()), beta.numpy())) for row in x])
    assert torch.allclose(per_point["elbo"].double(), words, rtol=0, atol=1e-9)
    assert torch.allclose(per_point["log_likelihood"].double(), words, rtol=0, atol=1e-9)
    assert result["elbo"]["mean"] == pytest.approx(float(words.mean()), abs=1e-9)

    data = SimpleNamespace(vocabulary=tuple(f"w{i}" for i in range(vocab)), train=x, test=x,
                           train_labels=None, test_labels=None)
    values = evaluation.metrics(SimpleNamespace(model=model, data=data), x, per_point)
    corpus = math.exp(-float(words.sum()) / float(lengths.sum()))
    per_document = math.exp(float((-words / lengths).mean()))
    for bound in ("elbo", "iwae"):
        assert values[f"perplexity_corpus_{bound}"] == pytest.approx(corpus, rel=1e-9)
        assert values[f"perplexity_per_document_{bound}"] == pytest.approx(per_document, rel=1e-9)
    assert values["log_likelihood_of_counts"] == pytest.approx(float(exact.mean()), rel=1e-9)


def test_gensim_c_npmi_equals_our_document_npmi_when_every_document_fits_in_one_window():
    """gensim's ``c_npmi`` counts sliding windows of 10 tokens; a document of at most 10 tokens is one window, so on
    such documents, with every pair of a topic's words seen together somewhere (gensim's ε = 1e-12 then moves each
    value by about 1e-11), it is our document-co-occurrence NPMI."""
    pytest.importorskip("gensim")
    from elbo.models.topics.metrics import gensim_npmi

    generator = torch.Generator().manual_seed(1)
    vocabulary = tuple(f"w{i}" for i in range(8))
    tokens = [tuple(torch.randint(0, 8, (int(torch.randint(2, 11, (1,), generator=generator)),),
                                  generator=generator).tolist()) for _ in range(200)]
    counts = torch.zeros(len(tokens), 8)
    for d, document in enumerate(tokens):
        for word in document:
            counts[d, word] += 1
    top = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7], [1, 3, 5, 7]])
    ours = npmi(top, counts)
    assert (ours > -1).all()  # every pair co-occurs in some document
    assert torch.allclose(gensim_npmi(top, tokens, vocabulary), ours, rtol=0, atol=1e-8)
