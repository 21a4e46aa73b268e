"""The topics kind's configuration: ``TopicConfig``, the ``TextOptions`` of a plain-text corpus, and the tables of their
choices (no torch at import)."""

from __future__ import annotations

from dataclasses import dataclass

from ..._checks import check_int_at_least, check_positive, check_positive_float, one_of
from ..._files import tuples_from_json
from ...errors import InputError

__all__ = ["TopicConfig", "TextOptions", "TOPIC_MODELS", "TOPIC_ACTIVATIONS", "STOP_WORDS", "MODEL_SETTINGS"]

# Srivastava & Sutton 2017; Miao et al. 2016; Burkhardt & Kramer 2019; Hoffman, Blei, Wang & Paisley 2013
TOPIC_MODELS = ("prodlda", "nvdm", "dirichlet", "lda")
TOPIC_ACTIVATIONS = ("softplus", "relu", "tanh")
STOP_WORDS = ("english", None)  # scikit-learn's English list, or none removed
_NEURAL = ("prodlda", "nvdm", "dirichlet")
# the settings that only some of the models read, and those models
MODEL_SETTINGS = {"hidden_dims": _NEURAL, "activation": _NEURAL, "dropout": _NEURAL,
                  "batch_norm": ("prodlda", "dirichlet"), "eta": ("lda",), "tau0": ("lda",), "kappa": ("lda",),
                  "local_iterations": ("lda",), "local_tolerance": ("lda",), "total_documents": ("lda",)}


@dataclass(frozen=True)
class TopicConfig:
    """A neural topic model on bags of words.

    ``model``: ``"prodlda"`` (a logistic-normal q over topic proportions ``θ = softmax(z)``, the Laplace approximation
    of a symmetric Dirichlet(``alpha``) prior, and the product-of-experts decoder ``softmax(BN(β θ))``) or ``"nvdm"``
    (a Gaussian latent ``z ~ N(0, I)`` and the decoder ``softmax(W z + b)``) or ``"dirichlet"`` (the Dirichlet
    VAE: a true Dirichlet(``alpha``) prior and a Dirichlet q over θ, exact KL, ProdLDA's decoder) or ``"lda"``
    (latent Dirichlet allocation by stochastic variational inference, ``elbo.models.topics.svi``: conjugate
    natural-gradient steps rather than gradient ascent, no encoder). ``num_topics``: the size of ``z``.
    ``alpha``: the symmetric Dirichlet prior of θ (``None``: 1 for the neural models, ``1 / num_topics`` for LDA,
    scikit-learn's default); for LDA, ``eta``: the prior of the topics (``None``: ``1 / num_topics``), ``tau0`` and
    ``kappa``: the step sizes ``ρ_t = (τ0 + t)^(-κ)``, ``local_iterations`` and ``local_tolerance``: the local
    step's cap and its mean-change test (scikit-learn's ``learning_offset``, ``learning_decay``,
    ``max_doc_update_iter``, ``mean_change_tol``, with its defaults); ``total_documents``: the corpus size ``D``,
    from the data set.
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
    alpha: float | None = None
    vocab_size: int | None = None
    eta: float | None = None
    tau0: float = 10.0
    kappa: float = 0.7
    local_iterations: int = 100
    local_tolerance: float = 1e-3
    total_documents: int | None = None

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
        for name in ("alpha", "eta"):
            if getattr(self, name) is not None:
                check_positive_float(**{name: getattr(self, name)})
        for name in ("vocab_size", "total_documents"):
            if getattr(self, name) is not None:
                check_positive(**{name: getattr(self, name)})
        _check_steps(self)

    @property
    def unused(self) -> tuple[str, ...]:
        """The settings of another model of the kind, which this one does not read (``MODEL_SETTINGS``)."""
        return tuple(name for name, models in MODEL_SETTINGS.items() if self.model not in models)

    @property
    def prior_concentration(self) -> float:
        """``alpha``, or its default: 1 for the neural models, ``1 / num_topics`` for LDA."""
        if self.alpha is not None:
            return float(self.alpha)
        return 1.0 / self.num_topics if self.model == "lda" else 1.0

    @classmethod
    def from_dict(cls, values: dict) -> TopicConfig:
        """Inverse of ``dataclasses.asdict`` after a JSON round trip (lists back to tuples)."""
        return cls(**{key: tuples_from_json(value) for key, value in values.items()})


def _check_steps(config: TopicConfig) -> None:
    """LDA's step-size and local-step settings (checked whatever the model, so no config holds a bad one)."""
    check_int_at_least("local_iterations", config.local_iterations, 1)
    if isinstance(config.tau0, bool) or not isinstance(config.tau0, (int, float)) or not 0 <= config.tau0 < 1e300:
        raise InputError(f"tau0 must be a finite number >= 0, got {config.tau0!r}", argument="tau0")
    if isinstance(config.kappa, bool) or not isinstance(config.kappa, (int, float)) or not 0.5 < config.kappa <= 1:
        raise InputError(f"kappa must be in (0.5, 1] (so that the steps sum to infinity and their squares do not), "
                         f"got {config.kappa!r}", argument="kappa")
    tolerance = config.local_tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1e300:
        raise InputError(f"local_tolerance must be a finite number >= 0, got {tolerance!r}",
                         argument="local_tolerance")


@dataclass(frozen=True)
class TextOptions:
    """How the data set ``"corpus"`` turns plain text into counts: scikit-learn's ``CountVectorizer``, fitted on the
    training documents alone.

    ``lowercase``: the text lower-cased first; ``stop_words``: ``"english"`` (scikit-learn's list) removed, or
    ``None``; ``min_df``: a word is kept when it is in at least this many training documents (a count), and
    ``max_df``: in at most this fraction of them (in ``(0, 1]``); ``max_features``: of those, only the most frequent
    this many (``None``: all). ``stream``: the training documents (of either format) read from disk a minibatch at a
    time, never all in memory (``elbo.models.topics.stream``; the LDA model only, and a test file is needed).
    """

    lowercase: bool = True
    stop_words: str | None = "english"
    min_df: int = 2
    max_df: float = 0.5
    max_features: int | None = None
    stream: bool = False

    def __post_init__(self):
        for name in ("lowercase", "stream"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}", argument=name)
        one_of("stop_words", self.stop_words, STOP_WORDS)
        check_positive(min_df=self.min_df)
        if not (isinstance(self.max_df, (int, float)) and not isinstance(self.max_df, bool) and 0 < self.max_df <= 1):
            raise InputError(f"max_df must be a number in (0, 1] (a fraction of the training documents), got "
                             f"{self.max_df!r}", argument="max_df")
        if self.max_features is not None:
            check_positive(max_features=self.max_features)

    @property
    def analyzer(self) -> dict:
        """The settings of ``CountVectorizer`` that decide a document's words (``lowercase``, ``stop_words``), the
        same for the vocabulary fitted in memory and in a stream."""
        return {"lowercase": self.lowercase, "stop_words": self.stop_words}

    @classmethod
    def from_dict(cls, values: dict) -> TextOptions:
        """Inverse of ``dataclasses.asdict`` after a JSON round trip."""
        return cls(**{"stream": False, **values})  # runs written before streaming did not stream
