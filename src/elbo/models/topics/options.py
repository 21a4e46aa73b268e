"""The topics kind's options of ``elbo train`` and its ``TopicConfig`` from them; the data set ``corpus``'s options
and its ``TextOptions`` from them (no torch)."""

from __future__ import annotations

from ...argtypes import default_of, non_negative_float, positive_float, positive_int, probability_below_one
from ...errors import InputError
from .config import MODEL_SETTINGS, STOP_WORDS, TOPIC_MODELS, TextOptions, TopicConfig

__all__ = ["add_arguments", "config_from_arguments", "add_text_arguments", "text_options_from_arguments"]


def _default(field: str):
    return default_of(TopicConfig, field)


def add_arguments(group) -> None:
    group.add_argument("--topic-model", choices=TOPIC_MODELS,
                       help=f"ProdLDA (Srivastava & Sutton 2017), NVDM (Miao et al. 2016), the Dirichlet VAE "
                            f"(Burkhardt & Kramer 2019), or LDA by stochastic variational inference (Hoffman et al. "
                            f"2013) [default: {_default('model')}]")
    group.add_argument("--topics", dest="num_topics", metavar="K", type=positive_int,
                       help=f"number of topics [default: {_default('num_topics')}]")
    widths = " ".join(map(str, _default("hidden_dims")))
    group.add_argument("--encoder-hidden", metavar="H", type=positive_int, nargs="+",
                       help=f"the encoder's hidden layer widths [default: {widths}]")
    group.add_argument("--dropout", type=probability_below_one,
                       help=f"dropout in training [default: {_default('dropout')}]")
    group.add_argument("--alpha", type=positive_float,
                       help="the symmetric Dirichlet prior of the topic proportions [default: 1; LDA: 1/K]")
    group.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", default=None,
                       help="ProdLDA without batch normalisation of the decoder's logits")
    group.add_argument("--eta", type=positive_float, help="LDA: the topics' symmetric Dirichlet prior [default: 1/K]")
    group.add_argument("--tau0", type=non_negative_float,
                       help=f"LDA: the step sizes' offset τ0 in ρ_t = (τ0 + t)^-κ [default: {_default('tau0')}]")
    group.add_argument("--kappa", type=positive_float,
                       help=f"LDA: the step sizes' decay κ, in (0.5, 1] [default: {_default('kappa')}]")
    group.add_argument("--local-iterations", metavar="N", type=positive_int,
                       help=f"LDA: at most N coordinate-ascent updates of each document's γ a step "
                            f"[default: {_default('local_iterations')}]")


# each option that only some of the models read: its flag and the setting it gives (``MODEL_SETTINGS``)
_FLAGS = {"eta": ("--eta", "eta"), "tau0": ("--tau0", "tau0"), "kappa": ("--kappa", "kappa"),
          "local_iterations": ("--local-iterations", "local_iterations"),
          "encoder_hidden": ("--encoder-hidden", "hidden_dims"), "dropout": ("--dropout", "dropout"),
          "batch_norm": ("--no-batch-norm", "batch_norm")}


def config_from_arguments(args) -> TopicConfig:
    """``TopicConfig`` with the options given; an option the chosen model does not read is refused."""
    model = args.topic_model or _default("model")
    for name, (flag, setting) in _FLAGS.items():
        models = MODEL_SETTINGS[setting]
        if getattr(args, name) is not None and model not in models:
            raise InputError(f"{flag}: an option of --topic-model {', '.join(models)} only, not of {model}; "
                             f"leave it out")
    given = {name: value for name, value in dict(
        model=args.topic_model, num_topics=args.num_topics,
        hidden_dims=args.encoder_hidden and tuple(args.encoder_hidden), dropout=args.dropout, alpha=args.alpha,
        batch_norm=args.batch_norm, eta=args.eta, tau0=args.tau0, kappa=args.kappa,
        local_iterations=args.local_iterations).items() if value is not None}
    return TopicConfig(**given)


def _text_default(field: str):
    return default_of(TextOptions, field)


def _stop_words_name(stop_words: str | None) -> str:
    return "none" if stop_words is None else stop_words


def add_text_arguments(group) -> None:
    group.add_argument("--min-df", metavar="N", type=positive_int,
                       help=f"plain text: keep the words in at least N training documents "
                            f"[default: {_text_default('min_df')}]")
    group.add_argument("--max-df", metavar="F", type=positive_float,
                       help=f"plain text: and in at most a fraction F of them, in (0, 1] "
                            f"[default: {_text_default('max_df')}]")
    group.add_argument("--max-features", metavar="N", type=positive_int,
                       help=f"plain text: of those, only the N most frequent "
                            f"[default: {_text_default('max_features') or 'all'}]")
    group.add_argument("--stop-words", choices=tuple(map(_stop_words_name, STOP_WORDS)),
                       help=f"plain text: the stop words removed [default: "
                            f"{_stop_words_name(_text_default('stop_words'))}]")
    group.add_argument("--no-lowercase", dest="lowercase", action="store_false", default=None,
                       help="plain text: keep the case of the words (lower-cased by default)")
    group.add_argument("--stream", action="store_true", default=None,
                       help="read the training documents from disk a minibatch at a time, never all in memory (the "
                            "LDA model; needs a test file)")


def text_options_from_arguments(args) -> TextOptions:
    given = {name: value for name, value in dict(
        lowercase=args.lowercase, stop_words=args.stop_words, min_df=args.min_df, max_df=args.max_df,
        max_features=args.max_features, stream=args.stream).items() if value is not None}
    if given.get("stop_words") == "none":
        given["stop_words"] = None
    return TextOptions(**given)
