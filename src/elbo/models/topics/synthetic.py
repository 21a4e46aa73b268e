"""Corpora drawn from LDA's own generative process, and how far estimated topics are from the true ones.

``generate_lda_corpus`` draws, for ``K`` topics over ``V`` words (Blei, Ng & Jordan 2003, §3),

    β_k ~ Dir(η 1_V),   θ_d ~ Dir(α 1_K),   N_d = N or 1 + Poisson(N - 1),
    z_di ~ Cat(θ_d),    w_di ~ Cat(β_{z_di})    (i = 1..N_d),

and returns the truth (``β``, ``θ``) with the documents' word counts as a ``SparseBatch``. ``write_lda_corpus`` writes
the same corpus, block by block in flat memory, as ``LABEL idx:count`` lines (label ``0``, 1-based word indices:
what ``datasets.load_bag_of_words`` reads), and ``write_vocabulary`` a matching vocabulary file. ``match_topics``
pairs estimated topics with true ones (the Hungarian algorithm on their Hellinger or cosine distances, as in
Hoffman, Blei & Bach 2010 and the topic-recovery literature since) and returns the mean matched distance.

Randomness: numpy's ``Generator`` from ``SeedSequence(seed)``: the topics from its child 0, the documents in blocks of
``block_size`` from children 1, 2, ..., so the same ``seed`` and ``block_size`` give the same corpus, whichever
function writes it.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..._checks import check_positive, check_positive_float, check_seed, one_of
from ...errors import InputError
from .lda import SparseBatch

__all__ = ["SyntheticCorpus", "generate_lda_corpus", "write_lda_corpus", "write_vocabulary", "TopicMatch",
           "topic_distances", "match_topics", "LENGTHS", "METRICS", "BLOCK_SIZE"]

LENGTHS = ("fixed", "poisson")
METRICS = ("hellinger", "cosine")
BLOCK_SIZE = 10_000


@dataclass(frozen=True, eq=False)
class SyntheticCorpus:
    """A corpus drawn from LDA: ``topics`` ``β`` ``(K, V)`` and ``proportions`` ``θ`` ``(D, K)`` (float64, rows
    summing to 1), and the ``documents``' word counts (a float64 ``SparseBatch``, ``D`` rows)."""

    topics: torch.Tensor
    proportions: torch.Tensor
    documents: SparseBatch

    def dense(self) -> torch.Tensor:
        """The counts as a dense ``(D, V)`` float64 tensor (for small corpora)."""
        return self.documents.csr().to_dense()


def _check_corpus_settings(num_documents, vocab_size, num_topics, words_per_document, lengths, alpha, eta, seed,
                           block_size) -> None:
    check_positive(num_documents=num_documents, vocab_size=vocab_size, num_topics=num_topics,
                   words_per_document=words_per_document, block_size=block_size)
    one_of("lengths", lengths, LENGTHS)
    check_positive_float(alpha=alpha, eta=eta)
    check_seed(seed)


def _rng(seed: int, child: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(child,)))


def _inverse_cdf(cdf: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each ``u`` in [0, 1) the first column ``j`` of its row of ``cdf`` ``(R, C)`` (rows ascending to 1) with
    ``cdf[row, j] > u``: a draw from that row's distribution. One ``searchsorted`` over the rows laid end to end, row
    ``r`` shifted by ``r`` (so ascending), which resolves probabilities down to ``~R · 1e-16``."""
    count = cdf.shape[1]
    shifted = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()
    index = np.searchsorted(shifted, u + rows, side="right") - rows * count
    return np.minimum(index, count - 1)  # u + r rounding up to r + 1


def _topics(vocab_size: int, num_topics: int, eta: float, seed: int) -> np.ndarray:
    return _rng(seed, 0).dirichlet(np.full(vocab_size, eta), size=num_topics)


def _block(rng, topic_cdf: np.ndarray, size: int, words_per_document: int, lengths: str, alpha: float):
    """One block of ``size`` documents: ``θ`` ``(size, K)``, and the CSR arrays (offsets, 0-based word ids, counts)."""
    num_topics, vocab_size = topic_cdf.shape
    theta = rng.dirichlet(np.full(num_topics, alpha), size=size)
    if lengths == "fixed":
        length = np.full(size, words_per_document)
    else:
        length = 1 + rng.poisson(words_per_document - 1, size=size)
    doc = np.repeat(np.arange(size), length)
    topic = _inverse_cdf(np.cumsum(theta, axis=1), doc, rng.random(doc.size))
    word = _inverse_cdf(topic_cdf, topic, rng.random(doc.size))
    key, counts = np.unique(doc * vocab_size + word, return_counts=True)
    offsets = np.zeros(size + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(key // vocab_size, minlength=size))
    return theta, offsets, key % vocab_size, counts


def _blocks(num_documents, vocab_size, num_topics, words_per_document, lengths, alpha, eta, seed, block_size):
    """The topics ``(K, V)``, then yields each block of documents (``_block``'s arrays)."""
    topics = _topics(vocab_size, num_topics, eta, seed)
    yield topics
    cdf = np.cumsum(topics, axis=1)
    for index, start in enumerate(range(0, num_documents, block_size)):
        size = min(block_size, num_documents - start)
        yield _block(_rng(seed, index + 1), cdf, size, words_per_document, lengths, alpha)


def generate_lda_corpus(num_documents: int, vocab_size: int, num_topics: int, *, words_per_document: int = 100,
                        lengths: str = "fixed", alpha: float = 0.1, eta: float = 0.01, seed: int = 0,
                        block_size: int = BLOCK_SIZE) -> SyntheticCorpus:
    """``num_documents`` documents drawn from LDA (the module's docstring has the process), in memory.

    ``words_per_document`` ``N``: each document's length, exactly (``lengths="fixed"``, the default: a corpus of
    known size, and the word frequencies' test has no length noise), or ``1 + Poisson(N - 1)`` (``"poisson"``: mean
    ``N``, variance ``N - 1``, never an empty document, which a ``LABEL idx:count`` reader would drop). ``alpha`` and
    ``eta``: the symmetric priors of ``θ`` and ``β``. The corpus depends on ``seed`` and ``block_size``."""
    _check_corpus_settings(num_documents, vocab_size, num_topics, words_per_document, lengths, alpha, eta, seed,
                           block_size)
    blocks = _blocks(num_documents, vocab_size, num_topics, words_per_document, lengths, alpha, eta, seed,
                     block_size)
    topics = next(blocks)
    thetas, offsets, ids, counts = [], [np.zeros(1, dtype=np.int64)], [], []
    for theta, block_offsets, block_ids, block_counts in blocks:
        thetas.append(theta)
        offsets.append(block_offsets[1:] + offsets[-1][-1])
        ids.append(block_ids)
        counts.append(block_counts)
    documents = SparseBatch(torch.from_numpy(np.concatenate(offsets)), torch.from_numpy(np.concatenate(ids)),
                            torch.from_numpy(np.concatenate(counts).astype(np.float64)), vocab_size)
    return SyntheticCorpus(torch.from_numpy(topics), torch.from_numpy(np.concatenate(thetas)), documents)


def _lines(offsets: np.ndarray, ids: np.ndarray, counts: np.ndarray) -> str:
    """A block's documents as ``0 idx:count ...`` lines (1-based ``idx``). The text is joined from per-value string
    tables in C (``str.join`` over an object array), with no Python loop over the words."""
    id_text = np.array([f"{i}:" for i in range(1, int(ids.max()) + 2)], dtype=object)
    top = int(counts.max())
    gap = np.array([f"{c} " for c in range(top + 1)], dtype=object)
    end = np.array([f"{c}\n0 " for c in range(top + 1)], dtype=object)  # the last pair of a line starts the next
    last = np.zeros(ids.size, dtype=bool)
    last[offsets[1:] - 1] = True
    pieces = np.empty(2 * ids.size, dtype=object)
    pieces[0::2] = id_text[ids]
    pieces[1::2] = np.where(last, end[counts], gap[counts])
    return "0 " + "".join(pieces.tolist())[:-2]  # without the "0 " that would start one more line


def write_lda_corpus(path, num_documents: int, vocab_size: int, num_topics: int, *, words_per_document: int = 100,
                     lengths: str = "fixed", alpha: float = 0.1, eta: float = 0.01, seed: int = 0,
                     block_size: int = BLOCK_SIZE) -> torch.Tensor:
    """Write ``generate_lda_corpus(...)``'s documents (the same arguments give the same documents) to ``path`` as
    ``LABEL idx:count`` lines, label ``0``, gzipped when ``path`` ends in ``.gz``; returns the true topics ``(K, V)``.

    One block of ``block_size`` documents is in memory at a time (about ``block_size · N · 40`` bytes)."""
    _check_corpus_settings(num_documents, vocab_size, num_topics, words_per_document, lengths, alpha, eta, seed,
                           block_size)
    path = Path(path)
    blocks = _blocks(num_documents, vocab_size, num_topics, words_per_document, lengths, alpha, eta, seed,
                     block_size)
    topics = next(blocks)
    with (gzip.open(path, "wt", encoding="utf-8") if path.suffix == ".gz" else
          path.open("w", encoding="utf-8")) as out:
        for _, offsets, ids, counts in blocks:
            out.write(_lines(offsets, ids, counts))
    return torch.from_numpy(topics)


def write_vocabulary(path, vocab_size: int) -> None:
    """A vocabulary file for a synthetic corpus: the words ``w1`` ... ``wV``, one a line."""
    check_positive(vocab_size=vocab_size)
    Path(path).write_text("".join(f"w{i}\n" for i in range(1, vocab_size + 1)), encoding="utf-8")


@dataclass(frozen=True, eq=False)
class TopicMatch:
    """``assignment[k]``: the estimated topic matched to true topic ``k``; ``distances[k]``: their distance;
    ``distance``: the mean of ``distances``."""

    distance: float
    distances: torch.Tensor
    assignment: torch.Tensor


def _topic_rows(name: str, values) -> torch.Tensor:
    values = torch.as_tensor(values).detach().cpu().to(torch.float64)
    if values.dim() != 2 or values.numel() == 0:
        raise InputError(f"{name} must be a non-empty (K, V) tensor, got shape {tuple(values.shape)}", argument=name)
    if not torch.isfinite(values).all() or (values < 0).any() or (values.sum(1) <= 0).any():
        raise InputError(f"{name} must hold finite weights >= 0, each row with a positive sum", argument=name)
    return values


def topic_distances(estimated, true, *, metric: str = "hellinger") -> torch.Tensor:
    """``(K_est, K_true)`` float64 distances between each estimated and each true topic (rows of word weights,
    normalised to sum to 1 first):

    * ``"hellinger"``: ``H(p, q) = ‖√p - √q‖₂ / √2 = √(1 - Σ_w √(p_w q_w))``, in [0, 1];
    * ``"cosine"``: ``1 - p·q / (‖p‖₂ ‖q‖₂)``, in [0, 1] for weights ≥ 0.
    """
    one_of("metric", metric, METRICS)
    p, q = _topic_rows("estimated", estimated), _topic_rows("true", true)
    if p.shape[1] != q.shape[1]:
        raise InputError(f"estimated and true must have the same vocabulary, got {p.shape[1]} and {q.shape[1]} "
                         f"words", argument="estimated")
    p, q = p / p.sum(1, keepdim=True), q / q.sum(1, keepdim=True)
    if metric == "hellinger":  # differences, not 1 - Σ √(pq), so that equal topics are exactly 0 apart
        return torch.cdist(p.sqrt(), q.sqrt(), compute_mode="donot_use_mm_for_euclid_dist") / math.sqrt(2.0)
    unit_p, unit_q = p / p.norm(dim=1, keepdim=True), q / q.norm(dim=1, keepdim=True)
    return (1.0 - unit_p @ unit_q.T).clamp_min(0.0)


def match_topics(estimated, true, *, metric: str = "hellinger") -> TopicMatch:
    """Each true topic paired with a distinct estimated one so that the total distance is least (the Hungarian
    algorithm, ``scipy.optimize.linear_sum_assignment``, on ``topic_distances``); ``K_est ≥ K_true``."""
    from scipy.optimize import linear_sum_assignment

    distances = topic_distances(estimated, true, metric=metric)  # (K_est, K_true)
    if distances.shape[0] < distances.shape[1]:
        raise InputError(f"estimated must have at least as many topics as true, got {distances.shape[0]} and "
                         f"{distances.shape[1]}", argument="estimated")
    _, columns = linear_sum_assignment(distances.T.numpy())  # rows: the true topics, 0..K_true - 1 in order
    assignment = torch.as_tensor(columns, dtype=torch.int64)
    matched = distances[assignment, torch.arange(distances.shape[1])]
    return TopicMatch(float(matched.mean()), matched, assignment)
