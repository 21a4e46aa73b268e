"""A corpus streamed from disk: documents read a minibatch at a time, never all in memory (issue 15).

``FeatStream`` reads ``LABEL idx:count`` lines (gzipped or not), ``TextStream`` plain text (one document a line)
through a vocabulary fitted in a first streamed pass, exactly as ``datasets.load_text_corpus`` fits it in memory.
Both count their documents once when opened (a pass over the lines, nothing kept), and ``batches(batch_size,
rank=, world_size=)`` yields ``lda.SparseBatch`` minibatches in the file's order (a stream is not shuffled): this
process's block of each global minibatch, so that each of ``world_size`` processes parses only its own lines.
``load_streamed_corpus`` gives a ``StreamedCorpus``, the ``elbo.protocols.Data`` of a streamed training split with
a test split (and an NPMI reference sample) in memory.
"""

from __future__ import annotations

import gzip
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import InputError
from .config import TextOptions
from .formats import decoded, feat, feat_pairs, text, vocabulary
from .lda import SparseBatch

__all__ = ["FeatStream", "TextStream", "StreamedCorpus", "load_streamed_corpus", "fit_streamed_vocabulary",
           "REFERENCE_DOCUMENTS"]

REFERENCE_DOCUMENTS = 20_000  # the first documents of a stream, kept in memory as the reference of NPMI


def _lines(path: Path):
    """``(number, line)`` of a UTF-8 text file, gzipped or not, read lazily."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as file:
        opener = gzip.open if file.read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                decoded(path, raw)  # raises the one-line message


def _chunks(numbered_lines, size: int):
    """Lists of ``size`` non-blank ``(number, line)`` pairs (the last may be shorter)."""
    documents = ((number, line) for number, line in numbered_lines if line.strip())
    while chunk := list(itertools.islice(documents, size)):
        yield chunk


class _Stream:
    """What both streams share: the document count and the split of each global minibatch among processes."""

    path: Path
    vocab_size: int
    num_documents: int

    def __len__(self) -> int:
        return self.num_documents

    def batches(self, batch_size: int, *, rank: int = 0, world_size: int = 1, dtype: torch.dtype | None = None):
        """This process's block of each minibatch of ``batch_size`` documents, in the file's order: rows
        ``[rank · b, (rank + 1) · b)`` with ``b = B // world_size`` of a minibatch of ``B`` (the remainder of a
        minibatch that does not split is left out, as ``elbo.train`` leaves it out of an in-memory batch)."""
        for chunk in _chunks(_lines(self.path), batch_size):
            block = len(chunk) // world_size
            if block:
                yield self._parse(chunk[rank * block:(rank + 1) * block], dtype or torch.get_default_dtype())

    def head(self, n: int) -> torch.Tensor:
        """The first ``n`` documents (or all) as a sparse COO tensor of counts ``(n, V)`` (dense, 20,000 documents of
        5,000 words would take 400 MB)."""
        batch = next(self.batches(n), None)
        if batch is None:
            return torch.zeros(0, self.vocab_size).to_sparse()
        return batch.csr().to_sparse_coo().coalesce()


class FeatStream(_Stream):
    """``LABEL idx:count`` lines of ``path`` (1-based indices into a vocabulary of ``vocab_size`` words), checked
    as ``datasets.load_bag_of_words`` checks them; a line whose counts are all zero is an empty document."""

    def __init__(self, path, vocab_size: int):
        self.path, self.vocab_size = Path(path), vocab_size
        self.num_documents = sum(1 for _, line in _lines(self.path) if line.strip())
        if not self.num_documents:
            raise InputError(f"{self.path}: no document (expected lines LABEL idx:count idx:count ...)")

    def _parse(self, chunk, dtype) -> SparseBatch:
        _, row, word, count = feat_pairs(self.path, chunk, self.vocab_size)
        counts = torch.sparse_coo_tensor(torch.stack([row, word]), count.to(dtype), (len(chunk), self.vocab_size),
                                         check_invariants=False).coalesce().to_sparse_csr()
        return SparseBatch(counts.crow_indices(), counts.col_indices(), counts.values(), self.vocab_size)


class TextStream(_Stream):
    """Plain text, one document a line, counted by scikit-learn's ``CountVectorizer`` over ``vocabulary``."""

    def __init__(self, path, vocabulary: tuple[str, ...], options: TextOptions, num_documents: int):
        from sklearn.feature_extraction.text import CountVectorizer

        self.path, self.vocab_size, self.num_documents = Path(path), len(vocabulary), num_documents
        self.vectorizer = CountVectorizer(vocabulary=list(vocabulary), **options.analyzer)

    def _parse(self, chunk, dtype) -> SparseBatch:
        counts = self.vectorizer.transform([line for _, line in chunk]).tocsr()
        counts.sort_indices()
        return SparseBatch(torch.from_numpy(counts.indptr.astype(np.int64)),
                           torch.from_numpy(counts.indices.astype(np.int64)),
                           torch.from_numpy(counts.data).to(dtype), self.vocab_size)


def fit_streamed_vocabulary(path: Path, options: TextOptions, *, chunk: int = 10_000) -> tuple[tuple[str, ...], int]:
    """The vocabulary ``CountVectorizer(min_df, max_df, max_features)`` would fit to all of ``path``'s documents,
    from document and term frequencies counted a chunk at a time; and the number of documents."""
    from sklearn.feature_extraction.text import CountVectorizer

    document_frequency, term_frequency, documents = Counter(), Counter(), 0
    for lines in _chunks(_lines(path), chunk):
        vectorizer = CountVectorizer(**options.analyzer)
        try:
            counts = vectorizer.fit_transform([line for _, line in lines]).tocsc()
        except ValueError:  # a chunk of nothing but stop words has no vocabulary
            documents += len(lines)
            continue
        words = vectorizer.get_feature_names_out()
        document_frequency.update(dict(zip(words, np.diff(counts.indptr).tolist())))
        term_frequency.update(dict(zip(words, np.asarray(counts.sum(0)).ravel().tolist())))
        documents += len(lines)
    kept = [w for w, df in document_frequency.items() if options.min_df <= df <= options.max_df * documents]
    if options.max_features is not None:
        kept = sorted(kept, key=lambda w: (-term_frequency[w], w))[:options.max_features]
    if not kept:
        raise InputError(f"{path}: no word is left in the vocabulary (relax min_df={options.min_df} or "
                         f"max_df={options.max_df})", argument="options")
    return tuple(sorted(kept)), documents


@dataclass(frozen=True, eq=False)
class StreamedCorpus:
    """A corpus whose training split is a stream (``FeatStream`` or ``TextStream``); ``val`` is empty and ``test``
    in memory; ``reference``: the first ``REFERENCE_DOCUMENTS`` training documents, in memory as a sparse tensor,
    the reference corpus of NPMI. No labels and no token sequences."""

    name: str
    train: _Stream
    val: torch.Tensor
    test: torch.Tensor
    vocabulary: tuple[str, ...]
    reference: torch.Tensor
    train_labels = val_labels = test_labels = label_names = train_tokens = test_tokens = None

    def resample(self, batch, generator: torch.Generator):
        return batch


def load_streamed_corpus(directory: Path, found: dict, plain: dict, options: TextOptions) -> StreamedCorpus:
    """The corpus of ``directory`` streamed (``options.stream``): its training file as a stream, its test file
    (which a streamed corpus must have: no tenth can be held out of a stream) in memory."""
    if (found["train"] or plain["train"]) is not None and (found["test"] or plain["test"]) is None:
        raise InputError(f"{directory}: a streamed corpus needs a test file (test.feat or test.txt) beside its "
                         f"training file", argument="data_dir")
    if plain["train"] is not None:
        words, documents = fit_streamed_vocabulary(plain["train"], options)
        train = TextStream(plain["train"], words, options, documents)
        test = train.vectorizer.transform([line for _, line in _lines(plain["test"]) if line.strip()])
        test = torch.from_numpy(test.toarray()).to(torch.get_default_dtype())
        test = test[test.sum(-1) > 0]
    else:
        words = vocabulary(found["vocabulary"], text(found["vocabulary"]))
        train = FeatStream(found["train"], len(words))
        test = feat(found["test"], text(found["test"]), len(words))[0]
    return StreamedCorpus("corpus", train, torch.zeros(0, len(words)), test, words, train.head(REFERENCE_DOCUMENTS))

