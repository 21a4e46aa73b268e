"""The topics kind: neural topic models of documents as bags of words, fitted by amortized VI (issue 14).

``config`` (``TopicConfig``, ``TextOptions``; no torch), ``model`` (ProdLDA and NVDM, ``make_topic_model``),
``datasets`` (20 Newsgroups in ProdLDA's split, BBC News, a user's own corpus as ``LABEL idx:count`` lines or plain
text), ``metrics`` (perplexity by both formulas, NPMI, topic diversity, classification accuracy) and ``evaluation``
(what ``elbo evaluate`` and ``elbo report`` add for this kind). Registered in ``elbo.registry`` as kind
``"topics"``; bounds are in nats per document.
"""

from __future__ import annotations

import dataclasses

from ...kinds import Dataset, Kind
from .config import TextOptions, TopicConfig

__all__ = ["KIND", "TopicConfig", "TextOptions", "configure", "TWENTY_NEWS", "BBC", "CORPUS"]


def configure(config: TopicConfig, data) -> TopicConfig:
    """The config with the data's vocabulary size and, for LDA, the number of training documents ``D`` (the scale
    of its global step)."""
    documents = len(data.train) if config.model == "lda" else None
    return dataclasses.replace(config, vocab_size=len(data.vocabulary), total_documents=documents)


_HERE = "elbo.models.topics"
KIND = Kind(name="topics", config=TopicConfig, unit="document", configure=configure, num_samples=1000,
            build=f"{_HERE}.model:make_topic_model", metrics=f"{_HERE}.evaluation:metrics",
            sections=f"{_HERE}.evaluation:sections", figures=f"{_HERE}.evaluation:figures",
            add_arguments=f"{_HERE}.options:add_arguments",
            config_from_arguments=f"{_HERE}.options:config_from_arguments",
            description="neural topic models (ProdLDA, NVDM) of bags of words")

TWENTY_NEWS = Dataset("topics", f"{_HERE}.datasets:load_20news",
                      "20 Newsgroups, ProdLDA's split: 11,258 + 7,487 documents, 1,995 words")
BBC = Dataset("topics", f"{_HERE}.datasets:load_bbc", "BBC News: 2,225 articles in 5 classes, 2,949 words")
CORPUS = Dataset("topics", f"{_HERE}.datasets:load_corpus",
                 "your own corpus: --data-dir DIR with train.feat, vocabulary.txt and, optionally, test.feat; or "
                 "plain text, train.txt and, optionally, test.txt",
                 options=TextOptions, add_arguments=f"{_HERE}.options:add_text_arguments",
                 options_from_arguments=f"{_HERE}.options:text_options_from_arguments")
