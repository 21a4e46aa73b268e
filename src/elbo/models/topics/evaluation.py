"""What ``elbo evaluate`` and ``elbo report`` add for a topic model: perplexity by both formulas from the ELBO and
from the importance-sampled bound, the log-likelihood of the counts, NPMI coherence and diversity of the topics,
and, for a labelled corpus, the accuracy of a classifier on the inferred topic proportions."""

from __future__ import annotations

import html
import importlib.util

import torch
from torch.distributions import Dirichlet

from ...likelihoods import log_multinomial_coefficient
from . import metrics as measures

__all__ = ["metrics", "sections", "figures", "topic_table", "coherence_table", "TOP_WORDS"]

TOP_WORDS = 10  # NPMI of each topic's top 10 words; diversity over the top 25


def topic_table(model, data, *, top: int = TOP_WORDS) -> list[dict]:
    """``coherence_table`` of the model's topic-word weights."""
    return coherence_table(model.topic_words().detach().cpu(), data, top=top)


def coherence_table(topic_words: torch.Tensor, data, *, top: int = TOP_WORDS) -> list[dict]:
    """Each topic's top words by the weights ``topic_words: (K, V)`` (in order) and their NPMI by document
    co-occurrence (the same code for our models and for the peers of ``benchmarks/topics.py``): ``npmi`` in the
    training split (of a streamed one, its first ``stream.REFERENCE_DOCUMENTS``),
    a pair never seen together counting -1 (our default); ``npmi_lau`` the same with such a pair counting 0, as Lau
    et al.'s toolkit does (the ProdLDA authors' script); ``npmi_test`` in the test split (the reference of some
    papers), -1 for a pair never seen together; and, where the data keep their token sequences and gensim is
    installed, ``npmi_gensim``: gensim's ``c_npmi`` over sliding windows of 10 tokens of the training documents."""
    words = measures.top_words(topic_words, min(top, len(data.vocabulary)))
    reference = data.train.cpu() if isinstance(data.train, torch.Tensor) else data.reference  # a stream's head
    columns = {"npmi": measures.npmi(words, reference),
               "npmi_lau": measures.npmi(words, reference, never=0.0),
               "npmi_test": measures.npmi(words, data.test.cpu())}
    if getattr(data, "train_tokens", None) and importlib.util.find_spec("gensim") is not None:
        columns["npmi_gensim"] = measures.gensim_npmi(words, data.train_tokens, data.vocabulary)
    return [{"words": [data.vocabulary[i] for i in row.tolist()]} | {name: float(values[k])
                                                                      for name, values in columns.items()}
            for k, row in enumerate(words)]


def metrics(run, test: torch.Tensor, per_point: dict) -> dict:
    """Perplexities (``elbo.models.topics.metrics.perplexities``) from the ELBO, from IWAE-K and (where
    ``elbo evaluate --ais`` ran) from AIS of every test document; the mean log-likelihood of the counts (IWAE-K plus
    the multinomial coefficient, nats per document);
    the topics' mean NPMI by each protocol of ``topic_table`` and their diversity; classification accuracy where
    there are labels; and, as details, each topic's words and NPMI."""
    model, data = run.model, run.data
    lengths = test.sum(-1).cpu()
    result = {}
    for name, key in (("elbo", "elbo"), ("iwae", "log_likelihood"), ("ais", "ais")):
        if key not in per_point:  # AIS only where asked
            continue
        values = measures.perplexities(per_point[key].cpu(), lengths)
        for formula in ("per_document", "corpus"):
            result[f"perplexity_{formula}_{name}"] = values[formula]
            result[f"perplexity_{formula}_{name}_stderr"] = values[f"{formula}_se"]
    coefficient = log_multinomial_coefficient(test).cpu()
    result["log_likelihood_of_counts"] = float((per_point["log_likelihood"].cpu() + coefficient).double().mean())
    topics = topic_table(model, data)
    for name in (key for key in topics[0] if key.startswith("npmi")):
        result[name] = sum(t[name] for t in topics) / len(topics)
    diversity_words = min(25, len(data.vocabulary))  # Dieng et al.'s 25, or every word of a smaller vocabulary
    result["diversity"] = measures.diversity(measures.top_words(model.topic_words().detach().cpu(), diversity_words))
    labelled = data.train_labels is not None and data.test_labels is not None and len(data.train_labels.unique()) > 1
    if labelled and len(test) == len(data.test):  # one class (every document labelled alike) is nothing to predict
        result["accuracy"] = measures.classification_accuracy(
            _proportions(model, data.train), data.train_labels, _proportions(model, test), data.test_labels)
    result["topics"] = topics
    return result


@torch.no_grad()
def _proportions(model, x: torch.Tensor) -> torch.Tensor:
    """Topic proportions, one row a document (the features a classifier sees): ``E_q[θ]`` for a Dirichlet q,
    ``softmax(E_q[z])`` for a Gaussian one."""
    x = x.to(next(model.parameters()).device)
    means = []
    for i in range(0, len(x), 500):
        q = model.guide(x[i:i + 500])
        means.append(q.mean if isinstance(q, Dirichlet) else torch.softmax(q.mean, -1))
    return torch.cat(means).cpu()


def sections(run, test: torch.Tensor) -> list[tuple[str, str]]:
    """The report's table of topics: each topic's top words and its NPMI, best first."""
    topics = sorted(topic_table(run.model, run.data), key=lambda t: -t["npmi"])
    columns = [key for key in topics[0] if key.startswith("npmi")]
    rows = "".join("<tr>" + "".join(f'<td class="number">{t[c]:.3f}</td>' for c in columns)
                   + f'<td>{html.escape(" ".join(t["words"]))}</td></tr>' for t in topics)
    means = ", ".join(f"{c} {sum(t[c] for t in topics) / len(topics):.3f}" for c in columns)
    note = (f'<p class="note">{len(topics)} topics, their top {TOP_WORDS} words, best first. npmi: document '
            f"co-occurrence in the training split, a pair never seen together counting −1; npmi_lau: the same "
            f"counting such a pair 0 (Lau et al.'s toolkit, the ProdLDA authors' script); npmi_test: the test split "
            f"as the reference; npmi_gensim (where shown): gensim's c_npmi over windows of 10 tokens. Means: "
            f"{means}.</p>")
    header = "".join(f"<th>{c}</th>" for c in columns)
    return [("Topics", f"{note}<table><tr>{header}<th>top words</th></tr>{rows}</table>")]


def figures(run, test: torch.Tensor, labels, kl) -> tuple[list, list]:
    """The report's figure of the topic-word matrix: each topic's word distribution ``softmax(β_k)`` (a row) over
    the union of every topic's top three words (the columns, in the order the topics first name them)."""
    from matplotlib.figure import Figure

    weights = torch.softmax(run.model.topic_words().detach().cpu().double(), -1)
    top = measures.top_words(weights, min(3, weights.shape[1]))
    columns = list(dict.fromkeys(top.flatten().tolist()))
    figure = Figure(figsize=(max(6.0, 0.16 * len(columns) + 1.5), max(3.0, 0.16 * len(weights) + 1.2)),
                    layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(weights[:, columns].numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
    axes.set_xticks(range(len(columns)), [run.data.vocabulary[i] for i in columns], rotation=90, fontsize=6)
    axes.set_yticks(range(len(weights)), [str(k) for k in range(len(weights))], fontsize=6)
    axes.set_xlabel("the top three words of every topic")
    axes.set_ylabel("topic")
    figure.colorbar(image, ax=axes, label="the word's share in topic k")  # short: a long label is clipped
    caption = ("The topic-word matrix over each topic's top three words: softmax of the decoder's weights of each "
               "topic, one topic a row.")
    return [("topic_words", caption, figure)], []
