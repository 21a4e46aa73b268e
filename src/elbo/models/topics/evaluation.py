"""What ``elbo evaluate`` and ``elbo report`` add for a topic model: perplexity by both formulas from the ELBO and
from the importance-sampled bound, the log-likelihood of the counts, NPMI coherence and diversity of the topics,
and, for a labelled corpus, the accuracy of a classifier on the inferred topic proportions."""

from __future__ import annotations

import html

import torch
from torch.distributions import Dirichlet

from ...likelihoods import log_multinomial_coefficient
from . import metrics as measures

__all__ = ["metrics", "sections", "figures", "topic_table", "TOP_WORDS"]

TOP_WORDS = 10  # NPMI of each topic's top 10 words; diversity over the top 25


def topic_table(model, data, *, top: int = TOP_WORDS) -> list[dict]:
    """Each topic's top words (in order) and their NPMI by document co-occurrence in the training split."""
    words = measures.top_words(model.topic_words().detach().cpu(), min(top, len(data.vocabulary)))
    coherence = measures.npmi(words, data.train.cpu())
    return [{"words": [data.vocabulary[i] for i in row.tolist()], "npmi": float(value)}
            for row, value in zip(words, coherence)]


def metrics(run, test: torch.Tensor, per_point: dict) -> dict:
    """Perplexities (``elbo.models.topics.metrics.perplexities``) from the ELBO and from IWAE-K of every test
    document; the mean log-likelihood of the counts (IWAE-K plus the multinomial coefficient, nats per document);
    NPMI (training-split document co-occurrence) and diversity; classification accuracy where there are labels;
    and, as details, each topic's words and NPMI."""
    model, data = run.model, run.data
    lengths = test.sum(-1).cpu()
    result = {}
    for name, key in (("elbo", "elbo"), ("iwae", "log_likelihood")):
        values = measures.perplexities(per_point[key].cpu(), lengths)
        for formula in ("per_document", "corpus"):
            result[f"perplexity_{formula}_{name}"] = values[formula]
            result[f"perplexity_{formula}_{name}_stderr"] = values[f"{formula}_se"]
    coefficient = log_multinomial_coefficient(test).cpu()
    result["log_likelihood_of_counts"] = float((per_point["log_likelihood"].cpu() + coefficient).double().mean())
    topics = topic_table(model, data)
    result["npmi"] = sum(t["npmi"] for t in topics) / len(topics)
    diversity_words = min(25, len(data.vocabulary))  # Dieng et al.'s 25, or every word of a smaller vocabulary
    result["diversity"] = measures.diversity(measures.top_words(model.topic_words().detach().cpu(), diversity_words))
    if data.train_labels is not None and data.test_labels is not None and len(test) == len(data.test):
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
    rows = "".join(f'<tr><td class="number">{t["npmi"]:.3f}</td><td>{html.escape(" ".join(t["words"]))}</td></tr>'
                   for t in topics)
    mean = sum(t["npmi"] for t in topics) / len(topics)
    note = (f'<p class="note">{len(topics)} topics, their top {TOP_WORDS} words; NPMI by document co-occurrence in '
            f"the training split (a pair never seen together counts −1), mean {mean:.3f}.</p>")
    return [("Topics", f"{note}<table><tr><th>NPMI</th><th>top words</th></tr>{rows}</table>")]


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
    figure.colorbar(image, ax=axes, label="softmax(β_k), the word's share in topic k")
    caption = ("The topic-word matrix over each topic's top three words: softmax of the decoder's weights of each "
               "topic, one topic a row.")
    return [("topic_words", caption, figure)], []
