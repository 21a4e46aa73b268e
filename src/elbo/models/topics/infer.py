"""Topic proportions of new documents under a trained topic model (``elbo infer`` on a run of kind topics), as
scikit-learn's ``transform`` and gensim's ``get_document_topics`` give them, with their uncertainty under q.

The documents are read through the run's own vocabulary: plain text, one document a line (gzipped or not), counted
by scikit-learn's ``CountVectorizer`` with the vocabulary fixed (lower-cased as the run's text was; words outside the
vocabulary dropped), or ``LABEL idx:count`` lines (``.feat``, indices into the run's vocabulary). Each document's
topic proportions ``θ`` are their mean and standard deviation under ``q(θ | x)``: in closed form for a Dirichlet q
(the Dirichlet VAE, LDA), by ``num_samples`` draws of ``softmax(z)`` for a Gaussian q (ProdLDA; NVDM's
``softmax(z)`` is the features its classifier reads, not a model quantity).
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.distributions import Dirichlet

from ..._checks import check_positive
from ..._files import write_atomically
from ...errors import InputError
from . import formats, metrics
from .config import TextOptions

__all__ = ["read_documents", "document_topics", "infer_file", "OUTPUTS"]

OUTPUTS = (".npz", ".csv")
_BATCH = 500  # documents per pass of the encoder


def read_documents(path, vocabulary: tuple[str, ...], options: TextOptions | None = None):
    """``(counts (D, V), line numbers (D,))`` of the documents of ``path`` over ``vocabulary``: ``.feat`` lines, or
    plain text one document a line (blank lines are none), tokenised with ``options``' case (``None``: lower-cased).
    A document with no word of the vocabulary is kept (its row is zeros), with a warning that counts them."""
    path = Path(path)
    text = formats.text(path)
    lines = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not lines:
        raise InputError(f"{path}: no document (expected one document a line)", argument="data")
    if path.name.removesuffix(".gz").endswith(".feat"):
        _, row, word, count = formats.feat_pairs(path, lines, len(vocabulary))
        counts = torch.zeros(len(lines), len(vocabulary), dtype=torch.get_default_dtype())
        counts.index_put_((row, word), count.to(counts.dtype), accumulate=True)
    else:
        from sklearn.feature_extraction.text import CountVectorizer  # slow to import: only here

        lowercase = True if options is None else options.lowercase
        vectorizer = CountVectorizer(vocabulary={word: i for i, word in enumerate(vocabulary)}, lowercase=lowercase)
        counts = torch.as_tensor(vectorizer.transform([line for _, line in lines]).toarray(),
                                 dtype=torch.get_default_dtype())
    empty = int((counts.sum(-1) == 0).sum())
    if empty:
        warnings.warn(f"{path}: {empty} of {len(lines)} documents have no word of the run's vocabulary of "
                      f"{len(vocabulary)}: their topics are the encoder's for an empty document", stacklevel=3)
    return counts, torch.tensor([number for number, _ in lines])


@torch.no_grad()
def document_topics(model, x: torch.Tensor, *, num_samples: int = 1000,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of each document's topic proportions under ``q(θ | x)``, each ``(D, K)``
    (module docstring); the model in evaluation mode."""
    check_positive(num_samples=num_samples)
    model.eval()
    device = next(model.parameters()).device
    means, sds = [], []
    for start in range(0, len(x), _BATCH):
        q = model.guide(x[start:start + _BATCH].to(device))
        if isinstance(q, Dirichlet):
            alpha = q.concentration
            total = alpha.sum(-1, keepdim=True)
            mean, variance = alpha / total, alpha * (total - alpha) / (total ** 2 * (total + 1))
        else:
            noise = torch.randn((num_samples, *q.mean.shape), generator=generator, dtype=q.mean.dtype,
                                device=device)
            theta = torch.softmax(q.mean + q.stddev * noise, -1)  # (S, B, K): draws of softmax(z), z ~ q
            mean, variance = theta.mean(0), theta.var(0)
        means.append(mean.cpu())
        sds.append(variance.sqrt().cpu())
    return torch.cat(means), torch.cat(sds)


def infer_file(run, data, out, *, force: bool = False, num_samples: int = 1000, seed: int = 0) -> dict:
    """The topic proportions of the documents in ``data`` under the run ``run`` (``elbo.runs.Run`` of kind topics),
    written to ``out``: ``.npz`` with ``proportions`` and ``proportions_sd`` ``(D, K)``, ``line`` (each document's
    line in the file), ``length`` (its words in the vocabulary), the topics ``topic_words`` ``(K, V)`` (each row a
    distribution over the words), ``vocabulary`` and each topic's ``top_words`` (10); or ``.csv``, one row a
    document: ``line``, ``length``, ``topic_k`` and ``sd_topic_k``. Returns the arrays."""
    out = Path(out)
    if out.suffix not in OUTPUTS:
        raise InputError(f"out must end in {' or '.join(OUTPUTS)}, got {str(out)!r}", argument="out")
    if out.exists() and not force:
        raise InputError(f"{out} exists already: pass force=True to replace it", argument="out")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such directory", argument="out")
    vocabulary = tuple(run.data.vocabulary)
    options = run.config.data_options if isinstance(run.config.data_options, TextOptions) else None
    counts, lines = read_documents(data, vocabulary, options)
    generator = torch.Generator(next(run.model.parameters()).device).manual_seed(seed)
    mean, sd = document_topics(run.model, counts, num_samples=num_samples, generator=generator)
    topic_words = torch.softmax(run.model.topic_words().detach().cpu().double(), -1)
    top = metrics.top_words(topic_words, min(10, len(vocabulary)))
    result = {"proportions": mean.numpy(), "proportions_sd": sd.numpy(), "line": lines.numpy(),
              "length": counts.sum(-1).numpy(), "topic_words": topic_words.numpy(),
              "vocabulary": np.array(vocabulary), "top_words": np.array(vocabulary)[top.numpy()]}
    write_atomically(out, _npz(result) if out.suffix == ".npz" else _csv(result))
    return result


def _npz(result: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **result)
    return buffer.getvalue()


def _csv(result: dict) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    topics = range(result["proportions"].shape[1])
    writer.writerow(["line", "length", *(f"topic_{k}" for k in topics), *(f"sd_topic_{k}" for k in topics)])
    for line, length, mean, sd in zip(result["line"], result["length"], result["proportions"],
                                      result["proportions_sd"]):
        writer.writerow([int(line), int(length), *(f"{v:.6g}" for v in mean), *(f"{v:.6g}" for v in sd)])
    return text.getvalue().encode()
