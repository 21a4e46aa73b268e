"""The topics kind's configuration: ``TopicConfig``, the ``TextOptions`` of a plain-text corpus, and the tables of their
choices (no torch at import)."""

from __future__ import annotations

from dataclasses import dataclass

from ..._checks import check_positive, check_positive_float, one_of
from ..._files import tuples_from_json
from ...errors import InputError

__all__ = ["TopicConfig", "TextOptions", "TOPIC_MODELS", "TOPIC_ACTIVATIONS", "STOP_WORDS"]

# Srivastava & Sutton 2017; Miao et al. 2016; Burkhardt & Kramer 2019
TOPIC_MODELS = ("prodlda", "nvdm", "dirichlet")
TOPIC_ACTIVATIONS = ("softplus", "relu", "tanh")
STOP_WORDS = ("english", None)  # scikit-learn's English list, or none removed


@dataclass(frozen=True)
class TopicConfig:
    """A neural topic model on bags of words.

    ``model``: ``"prodlda"`` (a logistic-normal q over topic proportions ``θ = softmax(z)``, the Laplace approximation
    of a symmetric Dirichlet(``alpha``) prior, and the product-of-experts decoder ``softmax(BN(β θ))``) or ``"nvdm"``
    (a Gaussian latent ``z ~ N(0, I)`` and the decoder ``softmax(W z + b)``) or ``"dirichlet"`` (the Dirichlet
    VAE: a true Dirichlet(``alpha``) prior and a Dirichlet q over θ, exact KL, ProdLDA's decoder). ``num_topics``:
    the size of ``z``.
    ``hidden_dims``: the encoder's layers; ``dropout``: on the encoder's output (and on θ for ProdLDA), in training
    only; ``batch_norm``: ProdLDA's batch normalisation of the decoder's logits (its running statistics, never the
    test batch's, in evaluation). ``vocab_size``: from the data set (``None`` until then).
    """

    model: str = "prodlda"
    num_topics: int = 50
    hidden_dims: tuple[int, ...] = (100, 100)
    activation: str = "softplus"
    dropout: float = 0.2
    batch_norm: bool = True
    alpha: float = 1.0
    vocab_size: int | None = None

    def __post_init__(self):
        one_of("model", self.model, TOPIC_MODELS)
        one_of("activation", self.activation, TOPIC_ACTIVATIONS)
        check_positive(num_topics=self.num_topics)
        if not (isinstance(self.hidden_dims, tuple) and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1
                                                            for h in self.hidden_dims)):
            raise InputError(f"hidden_dims must be a tuple of positive integers, got {self.hidden_dims!r}",
                             argument="hidden_dims")
        if not (isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool)
                and 0 <= self.dropout < 1):
            raise InputError(f"dropout must be a number in [0, 1), got {self.dropout!r}", argument="dropout")
        if not isinstance(self.batch_norm, bool):
            raise InputError(f"batch_norm must be True or False, got {self.batch_norm!r}", argument="batch_norm")
        check_positive_float(alpha=self.alpha)
        if self.vocab_size is not None:
            check_positive(vocab_size=self.vocab_size)

    @classmethod
    def from_dict(cls, values: dict) -> TopicConfig:
        """Inverse of ``dataclasses.asdict`` after a JSON round trip (lists back to tuples)."""
        return cls(**{key: tuples_from_json(value) for key, value in values.items()})


@dataclass(frozen=True)
class TextOptions:
    """How the data set ``"corpus"`` turns plain text into counts: scikit-learn's ``CountVectorizer``, fitted on the
    training documents alone.

    ``lowercase``: the text lower-cased first; ``stop_words``: ``"english"`` (scikit-learn's list) removed, or
    ``None``; ``min_df``: a word is kept when it is in at least this many training documents (a count), and
    ``max_df``: in at most this fraction of them (in ``(0, 1]``); ``max_features``: of those, only the most frequent
    this many (``None``: all).
    """

    lowercase: bool = True
    stop_words: str | None = "english"
    min_df: int = 2
    max_df: float = 0.5
    max_features: int | None = None

    def __post_init__(self):
        if not isinstance(self.lowercase, bool):
            raise InputError(f"lowercase must be True or False, got {self.lowercase!r}", argument="lowercase")
        one_of("stop_words", self.stop_words, STOP_WORDS)
        check_positive(min_df=self.min_df)
        if not (isinstance(self.max_df, (int, float)) and not isinstance(self.max_df, bool) and 0 < self.max_df <= 1):
            raise InputError(f"max_df must be a number in (0, 1] (a fraction of the training documents), got "
                             f"{self.max_df!r}", argument="max_df")
        if self.max_features is not None:
            check_positive(max_features=self.max_features)

    @classmethod
    def from_dict(cls, values: dict) -> TextOptions:
        """Inverse of ``dataclasses.asdict`` after a JSON round trip."""
        return cls(**values)
