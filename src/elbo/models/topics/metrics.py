"""The measurements of a topic model, as small pure functions: tensors in, floats or tensors out.

* ``perplexities``: held-out perplexity from per-document lower bounds on ``log p(x_d)``, both ways it is reported
  (over the corpus's words, and averaged over documents), each with a delta-method standard error over documents.
* ``top_words``, ``npmi``, ``diversity``: the topics' top words, their coherence (NPMI from document co-occurrence in
  a reference corpus) and how many of them are distinct (Dieng et al. 2020); ``gensim_npmi``, gensim's
  sliding-window ``c_npmi`` on token sequences, beside ours.
* ``classification_accuracy``: how well a linear classifier predicts a label from the topic proportions.

Sources. Perplexity: Miao, Yu & Blunsom 2016 (NVDM), §4; Srivastava & Sutton 2017 (ProdLDA), §7. NPMI: Bouma 2009;
Aletras & Stevenson 2013; Lau, Newman & Baldwin 2014 ("Machine reading tea leaves"). Diversity: Dieng, Ruiz & Blei
2020 (ETM), §5.
"""

from __future__ import annotations

import math

import torch

from ..._optional import require
from ...errors import InputError

__all__ = ["perplexities", "top_words", "npmi", "gensim_npmi", "diversity", "classification_accuracy"]


def _vector(name: str, values) -> torch.Tensor:
    values = torch.as_tensor(values).detach().cpu()
    if values.dim() != 1 or values.numel() == 0:
        raise InputError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(values.shape)}", argument=name)
    values = values.to(torch.float64)
    if not torch.isfinite(values).all():
        raise InputError(f"{name} must be finite, got {int((~torch.isfinite(values)).sum())} non-finite values",
                         argument=name)
    return values


def perplexities(log_bounds, lengths) -> dict:
    """Held-out perplexity from per-document lower bounds ``L_d ≤ log p(x_d)`` (nats) and lengths ``N_d``.

    ``log_bounds``: ``(D,)``, an ELBO or an IWAE-K bound per document; ``lengths``: ``(D,)``, the number of words in
    each document (``N_d > 0``). Returns floats:

    * ``"corpus"``: ``exp(-Σ_d L_d / Σ_d N_d)``, perplexity per word of the whole corpus, the form of scikit-learn's
      ``LatentDirichletAllocation.perplexity`` (``exp(-bound / X.sum())``) and of gensim's ``LdaModel.log_perplexity``
      (which returns the per-word bound ``bound / corpus_words``; gensim's log line prints ``2^(-bound)``, but the
      bound is in nats, so the comparable perplexity is ``exp(-bound)``: gensim issue #2623). Both peers' bounds also
      hold the global term ``E[log p(β) - log q(β)]`` of their topic-word posterior, which this one leaves out.
    * ``"per_document"``: ``exp(mean_d(-L_d / N_d))``, the formula of the NVDM and ProdLDA papers.
    * ``"corpus_se"``, ``"per_document_se"``: standard errors over documents by the delta method, ``NaN`` for
      ``D < 2``. Per document: with ``a_d = -L_d / N_d``, ``SE = exp(ā) · s_a / √D`` (``s_a`` the sample standard
      deviation, ``D - 1`` in its denominator). Corpus: ``R = Σ y_d / Σ N_d`` with ``y_d = -L_d`` is a ratio
      estimator; its linearisation ``R - R₀ ≈ mean_d(e_d) / N̄`` with residuals ``e_d = y_d - R N_d`` gives
      ``SE(R) = √(Σ_d e_d² / (D (D - 1))) / N̄`` and ``SE = exp(R) · SE(R)``.

    Both perplexities are upper bounds on the true ones when every ``L_d ≤ log p(x_d)``, since ``exp(-x)`` decreases;
    they differ when lengths differ (the per-document one weighs a short document as much as a long one).
    """
    bounds, lengths = _vector("log_bounds", log_bounds), _vector("lengths", lengths)
    if bounds.shape != lengths.shape:
        raise InputError(f"log_bounds and lengths must have the same shape, got {tuple(bounds.shape)} and "
                         f"{tuple(lengths.shape)}", argument="lengths")
    if (lengths <= 0).any():
        raise InputError(f"lengths must all be > 0, got {int((lengths <= 0).sum())} documents without words",
                         argument="lengths")
    documents = bounds.numel()
    nll = -bounds
    rate = nll.sum() / lengths.sum()
    per_word = nll / lengths
    mean = per_word.mean()
    if documents > 1:
        residuals = nll - rate * lengths
        rate_se = (residuals.square().sum() / (documents * (documents - 1))).sqrt() / lengths.mean()
        mean_se = per_word.std(correction=1) / math.sqrt(documents)
    else:
        rate_se = mean_se = torch.tensor(math.nan, dtype=torch.float64)
    corpus, per_document = rate.exp(), mean.exp()
    return {"corpus": float(corpus), "corpus_se": float(corpus * rate_se),
            "per_document": float(per_document), "per_document_se": float(per_document * mean_se)}


def top_words(topic_words, n: int) -> torch.Tensor:
    """The ``n`` highest-weighted word ids of each topic, highest first: ``LongTensor (K, n)``.

    ``topic_words``: ``(K, V)``, any weights that rank the words (β, its softmax, log-probabilities). Ties keep the
    lower word id first (a stable sort), so the result does not depend on the backend.
    """
    weights = torch.as_tensor(topic_words).detach().cpu()
    if weights.dim() != 2:
        raise InputError(f"topic_words must be (K, V), got shape {tuple(weights.shape)}", argument="topic_words")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= weights.shape[1]:
        raise InputError(f"n must be an integer from 1 to the vocabulary size {weights.shape[1]}, got {n!r}",
                         argument="n")
    return torch.sort(weights, dim=1, descending=True, stable=True).indices[:, :n].to(torch.long)


def _word_ids(top, vocab_size: int | None = None) -> torch.Tensor:
    top = torch.as_tensor(top).detach().cpu()
    if top.dim() != 2 or top.numel() == 0 or top.is_floating_point() or top.is_complex():
        raise InputError(f"top must be a non-empty (K, n) tensor of word ids, got shape {tuple(top.shape)} "
                         f"of {top.dtype}", argument="top")
    top = top.to(torch.long)
    if (top < 0).any() or (vocab_size is not None and (top >= vocab_size).any()):
        raise InputError(f"top must hold word ids from 0 to {vocab_size}, got {int(top.min())}..{int(top.max())}",
                         argument="top")
    return top


def _document_frequencies(reference, words: torch.Tensor) -> torch.Tensor:
    """``(W, W)`` counts of the reference documents holding both of two of ``words`` (the diagonal: holding one)."""
    if reference.layout != torch.strided:
        reference = reference.to_sparse_coo().coalesce()
    present = (reference.index_select(1, words).to_dense() > 0).to(torch.float64)
    return present.T @ present


def npmi(top, reference, *, never: float = -1.0) -> torch.Tensor:
    """Each topic's NPMI coherence from document co-occurrence in a reference corpus: ``(K,)`` float64.

    ``top``: ``(K, n)`` word ids (from ``top_words``), no word twice in a topic; ``reference``: ``(D, V)`` word counts,
    dense or a torch sparse tensor; a word occurs in a document when its count is > 0. With ``p(w)`` the fraction of
    documents holding ``w`` and ``p(w_i, w_j)`` the fraction holding both, each pair ``i < j`` of a topic's words has

        NPMI(w_i, w_j) = log(p(w_i, w_j) / (p(w_i) p(w_j))) / (-log p(w_i, w_j))

    in [-1, 1] (Bouma 2009), and the topic's NPMI is the mean over its ``n (n - 1) / 2`` pairs. A pair that never
    co-occurs gets ``never``: -1 by default, the limit as ``p(w_i, w_j) → 0``; Lau et al.'s toolkit
    (jhlau/topic_interpretability, ``calc_assoc``) gives such a pair 0, ``never=0.0`` reproduces that. A pair found in
    every document (``p = 1``, 0/0) gets 1, the limit along words that always occur together.

    This counts whole documents, as ETM (Dieng et al. 2020) does; gensim's ``c_npmi`` instead counts Boolean sliding
    windows (10 tokens by default) over token sequences and adds ε = 1e-12 to ``p(w_i, w_j)``, so that a pair never
    seen together scores a little above -1, and Lau et al. 2014 count windows of a large external corpus (Wikipedia).
    One matrix product of the binary reference, restricted to the topics' distinct words, does the counting.
    """
    reference = torch.as_tensor(reference) if not isinstance(reference, torch.Tensor) else reference.detach().cpu()
    if reference.dim() != 2 or reference.shape[0] == 0:
        raise InputError(f"reference must be (D, V) word counts with D > 0, got shape {tuple(reference.shape)}",
                         argument="reference")
    top = _word_ids(top, reference.shape[1])
    if top.shape[1] < 2:
        raise InputError(f"top must hold at least 2 words per topic, got {top.shape[1]}", argument="top")
    ordered = top.sort(dim=1).values
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise InputError("top must not repeat a word within a topic", argument="top")
    words, local = torch.unique(top, return_inverse=True)
    probability = _document_frequencies(reference, words) / reference.shape[0]
    i, j = torch.triu_indices(top.shape[1], top.shape[1], offset=1)
    a, b = local[:, i], local[:, j]
    joint, p_a, p_b = probability[a, b], probability[a, a], probability[b, b]
    seen = joint > 0
    safe = torch.where(seen & (joint < 1), joint, torch.full_like(joint, 0.5))
    value = torch.log(safe / torch.where(seen, p_a * p_b, torch.ones_like(joint))) / -torch.log(safe)
    value = torch.where(joint >= 1, torch.ones_like(value), value)
    value = torch.where(seen, value, torch.full_like(value, float(never)))
    return value.mean(dim=1)


def gensim_npmi(top, tokens, vocabulary, *, window: int = 10) -> torch.Tensor:
    """Each topic's ``c_npmi`` by gensim's ``CoherenceModel`` (Röder et al. 2015), the library call beside ``npmi``:
    ``(K,)`` float64.

    ``top``: ``(K, n)`` word ids; ``tokens``: the reference documents as sequences of word ids in their order;
    ``vocabulary``: the words of the ids. gensim counts Boolean sliding windows of ``window`` tokens (its default
    for ``c_npmi``: 10), adds ε = 1e-12 to each joint probability, and averages NPMI over the pairs of each topic's
    ``n`` words. Needs gensim (``pip install 'elbo[bench]'``).
    """
    require("gensim", extra="bench", feature="gensim's c_npmi coherence")
    from gensim.corpora import Dictionary
    from gensim.models.coherencemodel import CoherenceModel

    top = _word_ids(top, len(vocabulary))
    texts = [[vocabulary[i] for i in document] for document in tokens]
    topics = [[vocabulary[i] for i in row.tolist()] for row in top]
    model = CoherenceModel(topics=topics, texts=texts, dictionary=Dictionary(texts), coherence="c_npmi",
                           topn=top.shape[1], window_size=window, processes=1)
    return torch.tensor(model.get_coherence_per_topic(), dtype=torch.float64)


def diversity(top) -> float:
    """Topic diversity (Dieng, Ruiz & Blei 2020, §5): the fraction of distinct words among all topics' top words.

    ``top``: ``(K, n)`` word ids; the paper's definition takes ``n = 25`` (``top_words(beta, 25)``). 1 means no two
    topics share a top word; ``1 / K`` means every topic has the same ones.
    """
    top = _word_ids(top)
    return torch.unique(top).numel() / top.numel()


def _array(values):
    values = values.detach().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(values)
    return values.numpy()


def classification_accuracy(train_features, train_labels, test_features, test_labels) -> float:
    """Test accuracy of scikit-learn's ``LogisticRegression(max_iter=1000)`` fitted on the training features.

    Features: ``(D, K)`` topic proportions (or any document representation); labels: ``(D,)`` classes. The accuracy
    is the fraction of test documents whose predicted class is their label.
    """
    from sklearn.linear_model import LogisticRegression

    x_train, y_train, x_test, y_test = map(_array, (train_features, train_labels, test_features, test_labels))
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise InputError(f"train_features and test_features must be (D, K) with the same K, got {x_train.shape} and "
                         f"{x_test.shape}", argument="test_features")
    if len(y_train) != len(x_train) or len(y_test) != len(x_test):
        raise InputError("each labels vector must have one label per row of its features", argument="test_labels")
    classifier = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return float(classifier.score(x_test, y_test))
