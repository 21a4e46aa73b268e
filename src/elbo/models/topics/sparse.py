"""Documents as sparse word counts: ``SparseBatch``, rows of a compressed sparse row (CSR) matrix, which LDA's local
step, the corpus streams and the synthetic corpora share (``elbo.models.topics.lda`` re-exports it)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..._checks import check_positive
from ...errors import InputError

__all__ = ["SparseBatch", "as_batch"]

with warnings.catch_warnings():  # torch says once per process that CSR tensors are in beta: say it here, unheard
    warnings.simplefilter("ignore", UserWarning)
    torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0),
                            (1, 1), check_invariants=False)


@dataclass(frozen=True, eq=False)
class SparseBatch:
    """``B`` documents as sparse word counts, rows of a compressed sparse row (CSR) matrix ``(B, V)``.

    Document ``d``'s distinct words are ``word_ids[offsets[d]:offsets[d + 1]]`` (ascending) with ``counts`` > 0 at the
    same places. A row-compressed layout rather than ids padded to the longest document: in 20 Newsgroups a
    minibatch of 256 documents has 7.5 times more padded places than words (one long document sets the width).
    """

    offsets: torch.Tensor  # (B + 1,) int64, offsets[0] = 0
    word_ids: torch.Tensor  # (nnz,) int64 in [0, V)
    counts: torch.Tensor  # (nnz,) float
    vocab_size: int

    @classmethod
    def from_dense(cls, x: torch.Tensor, *, dtype: torch.dtype | None = None) -> SparseBatch:
        """The documents of dense counts ``x`` ``(B, V)`` (non-negative and finite), in ``dtype`` (default ``x``'s)."""
        x = torch.as_tensor(x)
        if x.dim() != 2 or not x.is_floating_point():
            raise InputError(f"x must be (B, V) floating-point word counts, got shape {tuple(x.shape)} of {x.dtype}",
                             argument="x")
        if not torch.isfinite(x).all() or (x < 0).any():
            raise InputError("x must hold finite counts >= 0", argument="x")
        csr = x.detach().to(dtype or x.dtype).to_sparse_csr()
        return cls(csr.crow_indices(), csr.col_indices(), csr.values(), x.shape[1])

    @classmethod
    def from_lists(cls, word_ids, counts, *, vocab_size: int, dtype: torch.dtype = torch.float64) -> SparseBatch:
        """The documents given as one sequence of word ids and one of counts per document (any order, no id twice in
        a document; zero counts are dropped)."""
        check_positive(vocab_size=vocab_size)
        if len(word_ids) != len(counts):
            raise InputError(f"word_ids and counts must hold the same number of documents, got {len(word_ids)} and "
                             f"{len(counts)}", argument="counts")
        ids = [torch.as_tensor(i, dtype=torch.int64).reshape(-1) for i in word_ids]
        values = [torch.as_tensor(c, dtype=dtype).reshape(-1) for c in counts]
        if any(i.shape != c.shape for i, c in zip(ids, values)):
            raise InputError("each document needs as many counts as word ids", argument="counts")
        row = torch.repeat_interleave(torch.arange(len(ids)), torch.tensor([len(i) for i in ids], dtype=torch.int64))
        ids = torch.cat([torch.zeros(0, dtype=torch.int64), *ids])
        values = torch.cat([torch.zeros(0, dtype=dtype), *values])
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
            raise InputError(f"word_ids must lie in [0, {vocab_size}), got {int(ids.min())}..{int(ids.max())}",
                             argument="word_ids")
        if not torch.isfinite(values).all() or (values < 0).any():
            raise InputError("counts must be finite and >= 0", argument="counts")
        key = row * vocab_size + ids
        if key.unique().numel() != key.numel():
            raise InputError("word_ids must not repeat a word within a document", argument="word_ids")
        order = torch.argsort(key)
        keep = values[order] > 0
        row, ids, values = row[order][keep], ids[order][keep], values[order][keep]
        offsets = torch.zeros(len(word_ids) + 1, dtype=torch.int64)
        offsets[1:] = torch.bincount(row, minlength=len(word_ids)).cumsum(0)
        return cls(offsets, ids, values, vocab_size)

    @property
    def num_documents(self) -> int:
        return self.offsets.numel() - 1

    def __len__(self) -> int:
        return self.num_documents

    @property
    def lengths(self) -> torch.Tensor:
        """``(B,)`` the number of words of each document, ``Σ_w n_dw``."""
        return torch.segment_reduce(self.counts, "sum", offsets=self.offsets, unsafe=True) if self.counts.numel() \
            else torch.zeros(self.num_documents, dtype=self.counts.dtype)

    def csr(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """The ``(B, V)`` sparse CSR matrix of the counts, or of other ``values`` at the same places."""
        return torch.sparse_csr_tensor(self.offsets, self.word_ids, self.counts if values is None else values,
                                       (self.num_documents, self.vocab_size), check_invariants=False)

    @property
    def rows(self) -> torch.Tensor:
        """``(nnz,)`` the document of each place."""
        return torch.repeat_interleave(torch.arange(self.num_documents), self.offsets.diff())

    def select(self, keep: torch.Tensor) -> SparseBatch:
        """The documents where the ``(B,)`` bool mask ``keep`` is true, in order."""
        lengths = self.offsets.diff()
        places = torch.repeat_interleave(keep, lengths)
        offsets = torch.zeros(int(keep.sum()) + 1, dtype=torch.int64)
        offsets[1:] = lengths[keep].cumsum(0)
        return SparseBatch(offsets, self.word_ids[places], self.counts[places], self.vocab_size)


def as_batch(x, *, dtype: torch.dtype | None = None) -> SparseBatch:
    """``x`` as a ``SparseBatch`` in ``dtype``: a ``SparseBatch`` (cast if need be) or dense counts ``(B, V)``."""
    if isinstance(x, SparseBatch):
        if dtype is None or x.counts.dtype == dtype:
            return x
        return SparseBatch(x.offsets, x.word_ids, x.counts.to(dtype), x.vocab_size)
    return SparseBatch.from_dense(x, dtype=dtype)
