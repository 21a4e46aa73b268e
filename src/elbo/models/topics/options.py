"""The topics kind's options of ``elbo train`` and its ``TopicConfig`` from them (no torch)."""

from __future__ import annotations

from ...cli._common import default_of, positive_float, positive_int, probability_below_one
from .config import TOPIC_MODELS, TopicConfig

__all__ = ["add_arguments", "config_from_arguments"]


def _default(field: str):
    return default_of(TopicConfig, field)


def add_arguments(group) -> None:
    group.add_argument("--topic-model", choices=TOPIC_MODELS,
                       help=f"ProdLDA (Srivastava & Sutton 2017) or NVDM (Miao et al. 2016) "
                            f"[default: {_default('model')}]")
    group.add_argument("--topics", dest="num_topics", metavar="K", type=positive_int,
                       help=f"number of topics [default: {_default('num_topics')}]")
    widths = " ".join(map(str, _default("hidden_dims")))
    group.add_argument("--encoder-hidden", metavar="H", type=positive_int, nargs="+",
                       help=f"the encoder's hidden layer widths [default: {widths}]")
    group.add_argument("--dropout", type=probability_below_one,
                       help=f"dropout in training [default: {_default('dropout')}]")
    group.add_argument("--alpha", type=positive_float,
                       help=f"the symmetric Dirichlet prior's concentration (ProdLDA) [default: {_default('alpha')}]")
    group.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", default=None,
                       help="ProdLDA without batch normalisation of the decoder's logits")


def config_from_arguments(args) -> TopicConfig:
    given = {name: value for name, value in dict(
        model=args.topic_model, num_topics=args.num_topics,
        hidden_dims=args.encoder_hidden and tuple(args.encoder_hidden), dropout=args.dropout, alpha=args.alpha,
        batch_norm=args.batch_norm).items() if value is not None}
    return TopicConfig(**given)
