"""Topic models side by side (issue 14): elbo's ProdLDA and NVDM against scikit-learn's and gensim's variational LDA
and a collapsed Gibbs sampler, on the same data, splits and metric code.

    python benchmarks/topics.py --data-dir ../shared/data                  # the full run (7 minutes, one thread)
    python benchmarks/topics.py --quick                                    # a smoke run of a minute or two
    python benchmarks/topics.py --datasets bbc --only prodlda,sklearn-batch --num-samples 20
    python benchmarks/topics.py --render benchmarks/results/topics.json    # the tables of the saved result

Data sets (``elbo.models.topics.datasets``): ``20news``, 20 Newsgroups in ProdLDA's split (11,258 training, 7,487
test documents, 1,995 words), with 50 topics; ``bbc``, BBC News as OCTIS split it (1,556 / 334 / 335 documents,
2,949 words, five classes), with 20 topics. Every contestant fits on the training split's counts and is measured
on the test split; the validation split is unused.

The peers get the training documents in one fixed random order (``_harness.shuffled_training``): their online
passes take minibatches in the order given, and 20news's file is not in a random order. Ours read the data
themselves and reshuffle every epoch.

Contestants, one after the other on a data set (all of them on one data set before the next), single-threaded by
default (``--threads``: torch's threads and, through threadpoolctl, the BLAS/OpenMP pools of numpy and
scikit-learn), seed 0:

1. ``prodlda``, ``nvdm``, ``dirichlet`` (elbo), and ProdLDA's ablations ``prodlda-no-bn`` (``batch_norm=False``:
   no batch norm in the encoder or decoder) and ``prodlda-no-dropout`` (``dropout=0``):
   ``elbo.train.train(TrainConfig(data, model=TopicConfig(model,
   num_topics), objective="elbo", epochs=E, batch_size=64 (NVDM: 200), lr=0.002, adam_betas=(0.99, 0.999), seed=0))``
   (TopicConfig's other fields at their defaults: encoder 100-100 softplus, dropout 0.2, ProdLDA's batch norm and
   Laplace-approximated Dirichlet(1) prior; NVDM's N(0, I) prior; the Dirichlet VAE's Dirichlet(1) prior and q), then
   ``elbo.evaluate.evaluate_run(run, num_samples=K, iwae_samples=())``: the ELBO and IWAE-K of every test document,
   the kind's metrics from them;
2. ``sklearn-batch``, ``sklearn-online``: ``sklearn.decomposition.LatentDirichletAllocation(n_components,
   learning_method="batch" | "online", random_state=0)`` with scikit-learn's defaults otherwise (doc_topic_prior =
   topic_word_prior = 1/n_components, max_iter=10; online: batch_size=128, learning_decay=0.7, learning_offset=10),
   fitted on the training counts as a scipy CSR matrix;
3. ``gensim``: ``gensim.models.LdaModel(corpus, num_topics, passes=10, chunksize=128, eval_every=None,
   random_state=0)``: ten passes of 128-document chunks, as scikit-learn's online run makes ten epochs of 128-document
   batches; gensim's defaults otherwise (alpha = eta = 1/num_topics, as scikit-learn's priors; update_every=1,
   iterations=50, decay=0.5, offset=1.0). ``eval_every=None``: no perplexity logging inside the timed fit
   (scikit-learn's default evaluate_every=-1 does none either);
4. ``gibbs``: the ``lda`` package's collapsed Gibbs sampler (Griffiths & Steyvers 2004), ``lda.LDA(n_topics,
   n_iter=--gibbs-iterations, random_state=0)`` with its priors alpha=0.1, eta=0.01; topics from the last state.

Measured per (data set, contestant):

- ``fit s``: wall time of fitting (for elbo the whole ``train`` call: loading the data, building, training, writing
  the run); ``eval s``: the held-out measurement after it (for elbo ``evaluate_run``: ELBO, IWAE-K, NPMI, accuracy);
- NPMI: the mean over topics of each topic's top 10 words' NPMI, by the protocols of
  ``evaluation.coherence_table``: document co-occurrence in the training split with a pair never seen together
  counting -1 (``metrics.npmi``) or 0 (Lau et al.'s toolkit), in the test split, and gensim's sliding-window
  ``c_npmi`` on BBC's token sequences; from each model's topic-word matrix (elbo's
  ``topic_words()``, scikit-learn's ``components_``, gensim's ``get_topics()``, the sampler's ``topic_word_``);
  diversity: the fraction of distinct words among the topics' top 25 (``metrics.diversity``);
- accuracy (BBC): ``metrics.classification_accuracy`` (logistic regression on the training documents' topic
  proportions, scored on the test documents'): elbo's ``softmax(E_q[z])``; scikit-learn's ``transform``; gensim's
  variational Dirichlet ``gamma`` of each document, normalised; the sampler's ``transform`` (its fixed-point
  estimate of θ given the topics) for training and test documents alike;
- perplexity on the test split, each by the formula of its own row, stated in the table:
  elbo: ``metrics.perplexities`` of the ELBO and of IWAE-K, corpus ``exp(-Σ L_d / Σ N_d)`` and per document
  ``exp(mean_d(-L_d / N_d))`` (upper bounds on the model's true perplexities; β is a point estimate, so no global
  term); scikit-learn: its own ``perplexity(test)``, ``exp(-bound / N)`` with the variational bound of the test
  documents (θ fitted to each by its E-step) **plus** the global term ``E_q[log p(β) - log q(β)]`` of its topics;
  gensim: ``exp(-log_perplexity(test))``, the same construction (its log line prints ``2^(-bound)``, but the bound is
  in nats: gensim issue #2623); the Gibbs sampler: none (the ``lda`` package has no held-out likelihood estimator,
  and this benchmark does not make one up). Only the elbo rows are comparable with each other; the peers' bounds
  differ in what they contain (see the notes the table prints).

On the benchmark harness (``_harness.py``: the options every benchmark has). Prints one markdown table and writes
``--json``: the settings, the versions, the load average at the start and the
end, every row (with each model's topics) and the notes. A contestant that raises is recorded as an error row; a
peer whose package is not installed is skipped with the reason.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from types import SimpleNamespace

import _harness  # beside this script
import numpy as np
import torch
from _harness import DATA_DIR, REPO, Benchmark, Column, Contestant, Setting, cell, main, markdown

from elbo.configs import TrainConfig
from elbo.evaluate import evaluate_run
from elbo.models.topics import metrics as measures
from elbo.models.topics.config import TopicConfig
from elbo.models.topics.datasets import load_20news, load_bbc
from elbo.models.topics.evaluation import coherence_table
from elbo.train import train

DATASETS = {"20news": (load_20news, 50), "bbc": (load_bbc, 20)}  # loader, number of topics
DEFAULT_EPOCHS = {"20news": 100, "bbc": 500}  # bbc: 8 steps an epoch, so 4000 steps against 20news's 5700
QUICK_EPOCHS = {"20news": 2, "bbc": 10}
ABLATIONS = {"prodlda-no-bn": {"batch_norm": False}, "prodlda-no-dropout": {"dropout": 0.0}}  # of ProdLDA's defaults
# 64: at the paper's 200, ProdLDA's NPMI was 0.17 (see the README); NVDM's bound becomes NaN at 64 (epoch 11), not 200
BATCH_SIZES, LR, ADAM_BETAS, SEED = {"nvdm": 200}, 0.002, (0.99, 0.999), 0
BATCH_SIZE = 64  # every other elbo row's
TOP_NPMI, TOP_DIVERSITY = 10, 25
NOTES = [
    "elbo rows: perplexities from each test document's ELBO and IWAE-K bound (nats, no multinomial coefficient: a "
    "per-token likelihood, as LDA's), both formulas; bounds, so upper bounds on the true perplexities; topics are a "
    "point estimate, so there is no global term; q is the trained encoder (amortized), never fitted to a test "
    "document.",
    "sklearn rows: LatentDirichletAllocation.perplexity(test) = exp(-bound / N_test), corpus formula; its bound fits "
    "a variational q(θ) to each test document (the E-step on the test words themselves) and adds the global term "
    "E_q[log p(β) - log q(β)] of the whole topic-word posterior, charged against the test words. Not comparable "
    "with the elbo rows' numbers (different bound, different q), only roughly with the other peers'.",
    "gensim rows: exp(-LdaModel.log_perplexity(test)), corpus formula, natural log (the bound is in nats; gensim's "
    "log line's 2^(-bound) is wrong, issue #2623); the same construction as scikit-learn's (E-step on the test "
    "documents, global β term included) but gensim's online estimate of λ: not comparable with the elbo rows.",
    "Gibbs rows: the lda package estimates no held-out likelihood; its priors are its own defaults (alpha=0.1, "
    "eta=0.01), not 1/K.",
    "Every peer's number converted to ours ('ours from its λ'): from its topics' λ (scikit-learn's components_, "
    "gensim's state.get_lambda(), the sampler's topic-word counts + η), each test document's ELBO given the point "
    "estimate E[β] with q(θ) from the local step on that document (lda.document_elbos), through the elbo rows' "
    "formulas: a bound on log p(x_d | E[β]), the evidence the elbo rows bound, with a q fitted to each document "
    "rather than amortized.",
    "NPMI: top 10 words of each topic, the same code for every row (elbo.models.topics.evaluation.coherence_table). "
    "NPMI: document co-occurrence in the training split, a pair never seen together counting -1 (the limit); "
    "NPMI, Lau: the same counting such a pair 0, as Lau et al.'s toolkit (calc_assoc) does, the toolkit behind the "
    "ProdLDA authors' reported 0.2506 (their coherence_from_paper_script), with whole documents as its windows; "
    "NPMI, test: the test split as the reference, -1 for a pair never seen; c_npmi, gensim: gensim's "
    "CoherenceModel(coherence='c_npmi', topn=10, window_size=10) on the training documents' token sequences, "
    "where the corpus keeps them (BBC). Diversity over the top 25.",
]


# --- the contestants -------------------------------------------------------------------------------------------


def topic_measures(topic_words, data) -> dict:
    """NPMI by every protocol of ``elbo.models.topics.evaluation.coherence_table`` (top 10) and diversity (top 25)
    of a ``(K, V)`` topic-word matrix, and the topics' words: what ``elbo evaluate`` computes for our models, for a
    peer's matrix."""
    weights = torch.as_tensor(np.asarray(topic_words, dtype=np.float64))
    topics = coherence_table(weights, data, top=TOP_NPMI)
    means = {key: sum(t[key] for t in topics) / len(topics) for key in topics[0] if key.startswith("npmi")}
    return {**means, "diversity": measures.diversity(measures.top_words(weights, TOP_DIVERSITY)), "topics": topics}


def point_perplexity(lam, alpha: float, data) -> dict:
    """A peer's perplexities by our formulas (``metrics.perplexities``): from each test document's ELBO given the
    topics' point estimate ``E[β] = λ / Σλ``, with ``q(θ)`` the local step's on the document
    (``lda.document_elbos(topics="point")``), a bound on ``log p(x_d | E[β])``, the evidence ours bound too."""
    from elbo.models.topics import lda

    lam = torch.as_tensor(np.asarray(lam, dtype=np.float64))
    bounds = lda.document_elbos(data.test.double(), lam, float(alpha))
    values = measures.perplexities(bounds, data.test.sum(-1).double())
    return {"corpus": values["corpus"], "per_document": values["per_document"],
            "corpus_stderr": values["corpus_se"], "per_document_stderr": values["per_document_se"]}


def accuracy(data, train_features, test_features):
    if data.train_labels is None or data.test_labels is None:
        return None
    return measures.classification_accuracy(train_features, data.train_labels, test_features, data.test_labels)


def run_ours(model_name: str, case, settings, *, name: str | None = None, **fields) -> dict:
    config = TrainConfig(data=case.dataset, data_dir=str(settings.data_dir),
                         model=TopicConfig(model=model_name, num_topics=case.num_topics, **fields), objective="elbo",
                         epochs=settings.epochs[case.dataset], batch_size=BATCH_SIZES.get(model_name, BATCH_SIZE),
                         lr=LR, adam_betas=ADAM_BETAS, seed=SEED)
    out = settings.out / f"{case.dataset}-{name or model_name}"
    start = time.perf_counter()
    train(config, out, progress=False, force=True)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    result = evaluate_run(out, data_dir=str(settings.data_dir), num_samples=settings.num_samples, iwae_samples=())
    evaluation = time.perf_counter() - start
    m = result["metrics"]
    perplexity = {bound: {formula: m[f"perplexity_{formula}_{bound}"] for formula in ("corpus", "per_document")}
                  | {f"{formula}_stderr": m[f"perplexity_{formula}_{bound}_stderr"]
                     for formula in ("corpus", "per_document")} for bound in ("elbo", "iwae")}
    return {"fit_s": fit, "eval_s": evaluation, **{key: m[key] for key in m if key.startswith("npmi")},
            "diversity": m["diversity"],
            "accuracy": m.get("accuracy"), "perplexity": perplexity, "run": str(out), "epochs": config.epochs,
            "config": config.to_dict(), "active_units": result["active_units"],
            "log_likelihood_of_counts": m["log_likelihood_of_counts"], "topics": result["details"]["topics"]}


def run_sklearn(method: str, case, settings) -> dict:
    import scipy.sparse
    from sklearn.decomposition import LatentDirichletAllocation

    data, num_topics = case.data, case.num_topics
    train_x, test_x = (scipy.sparse.csr_matrix(x.numpy()) for x in (data.train, data.test))
    model = LatentDirichletAllocation(n_components=num_topics, learning_method=method,
                                      max_iter=settings.sklearn_iterations, random_state=SEED)
    start = time.perf_counter()
    model.fit(train_x)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    perplexity = float(model.perplexity(test_x))
    features = (model.transform(train_x), model.transform(test_x)) if data.train_labels is not None else None
    evaluation = time.perf_counter() - start
    return {"fit_s": fit, "eval_s": evaluation, **topic_measures(model.components_, data),
            "accuracy": accuracy(data, *features) if features else None,
            "perplexity": {"sklearn": {"corpus": perplexity},
                           "point": point_perplexity(model.components_, model.doc_topic_prior_, data)},
            "settings": {"doc_topic_prior": model.doc_topic_prior_, "topic_word_prior": model.topic_word_prior_,
                         "max_iter": model.max_iter, "n_iter": model.n_iter_, "n_batch_iter": model.n_batch_iter_,
                         "batch_size": model.batch_size, "learning_decay": model.learning_decay,
                         "learning_offset": model.learning_offset}}


def run_gensim(case, settings) -> dict:
    from gensim.models import LdaModel

    logging.getLogger("gensim").setLevel(logging.WARNING)
    data, num_topics = case.data, case.num_topics
    corpus, test = _harness.bag_of_words(data.train), _harness.bag_of_words(data.test)
    start = time.perf_counter()
    model = LdaModel(corpus, num_topics=num_topics, id2word=dict(enumerate(data.vocabulary)),
                     passes=settings.gensim_passes, chunksize=128, eval_every=None, random_state=SEED)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    bound = float(model.log_perplexity(test))
    features = None
    if data.train_labels is not None:
        gammas = [model.inference(docs)[0] for docs in (corpus, test)]
        features = [g / g.sum(1, keepdims=True) for g in gammas]
    evaluation = time.perf_counter() - start
    return {"fit_s": fit, "eval_s": evaluation, **topic_measures(model.get_topics(), data),
            "accuracy": accuracy(data, *features) if features else None,
            "perplexity": {"gensim": {"corpus": math.exp(-bound)},
                           "point": point_perplexity(model.state.get_lambda(), float(np.mean(model.alpha)), data)},
            "log_perplexity": bound,
            "settings": {"alpha": float(np.mean(model.alpha)), "eta": float(np.mean(model.eta)),
                         "passes": model.passes, "chunksize": model.chunksize, "iterations": model.iterations,
                         "decay": model.decay, "offset": model.offset, "update_every": model.update_every}}


def run_gibbs(case, settings) -> dict:
    import lda
    import scipy.sparse

    data, num_topics = case.data, case.num_topics
    logging.getLogger("lda").setLevel(logging.WARNING)
    train_x, test_x = (scipy.sparse.csr_matrix(x.to(torch.int64).numpy()) for x in (data.train, data.test))
    model = lda.LDA(n_topics=num_topics, n_iter=settings.gibbs_iterations, random_state=SEED, refresh=10**9)
    start = time.perf_counter()
    model.fit(train_x)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    features = (model.transform(train_x), model.transform(test_x)) if data.train_labels is not None else None
    evaluation = time.perf_counter() - start
    return {"fit_s": fit, "eval_s": evaluation, **topic_measures(model.topic_word_, data),
            "accuracy": accuracy(data, *features) if features else None,
            "perplexity": {"point": point_perplexity(model.nzw_ + model.eta, model.alpha, data)},
            "train_log_likelihood": float(model.loglikelihood()),
            "settings": {"alpha": model.alpha, "eta": model.eta, "n_iter": model.n_iter}}


# --- reporting -------------------------------------------------------------------------------------------------


FORMULAS = {"elbo": "ELBO; corpus exp(-ΣL/ΣN), per-doc exp(mean -L/N)",
            "iwae": "IWAE-{k}; corpus exp(-ΣL/ΣN), per-doc exp(mean -L/N)",
            "sklearn": "sklearn perplexity(): exp(-bound/N), E-step on test docs, + global β term",
            "gensim": "exp(-log_perplexity()), nats, E-step on test docs, + global β term",
            "point": "ours from its λ: ELBO given E[β], q(θ) fitted to each test doc; corpus, per-doc"}


NPMI_COLUMNS = ("npmi", "npmi_lau", "npmi_test", "npmi_gensim")  # evaluation.coherence_table's


def perplexity_lines(row, k: int) -> list[tuple[str, str, str]]:
    """(corpus, per-document, formula) for each perplexity of a row: two for elbo, one for a peer, one '-'."""
    lines = []
    for bound, values in row.get("perplexity", {}).items():
        corpus = f"{values['corpus']:.1f}" + (f" ± {values['corpus_stderr']:.1f}" if "corpus_stderr" in values else "")
        per_doc = (f"{values['per_document']:.1f} ± {values['per_document_stderr']:.1f}"
                   if "per_document" in values else "-")
        lines.append((corpus, per_doc, FORMULAS[bound].format(k=k)))
    return lines or [("-", "-", "none (no held-out estimator)")]


def table(result: dict) -> str:
    settings = result["settings"]
    k = settings.get("num_samples", settings.get("k"))  # older results: "k"
    lines = []
    for row in result["rows"]:
        head = [row["dataset"], str(row["num_topics"]), row["contestant"]]
        if row.get("error") or row.get("skipped"):
            lines.append(head + ["-"] * 10 + [row.get("error") or row["skipped"]])
            continue
        for i, (corpus, per_doc, formula) in enumerate(perplexity_lines(row, k)):
            if i == 0:
                lines.append(head + [cell(row["fit_s"], ".1f"), cell(row["eval_s"], ".1f")]
                             + [cell(row.get(key), ".3f") for key in NPMI_COLUMNS]
                             + [cell(row["diversity"], ".3f"), cell(row["accuracy"], ".3f"), corpus, per_doc, formula])
            else:
                lines.append([""] * 11 + [corpus, per_doc, formula])
    headers = ["data", "topics", "contestant", "fit s", "eval s", "NPMI", "NPMI, Lau", "NPMI, test", "c_npmi, gensim",
               "diversity (top 25)", "accuracy", "perplexity, corpus", "perplexity, per doc",
               f"perplexity from (K = {k} for IWAE)"]
    right = [False, True, False] + [True] * 10 + [False]
    return "\n".join([markdown(headers, lines, right), "", "Notes:", *(f"- {note}" for note in result["notes"])])


def _epochs(text: str) -> dict:
    """``100`` (every data set) or ``20news=100,bbc=500``."""
    if "=" not in text:
        return dict.fromkeys(DATASETS, int(text))
    epochs = dict(DEFAULT_EPOCHS)
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in DATASETS:
            raise argparse.ArgumentTypeError(f"unknown data set {name.strip()!r} (known: {', '.join(DATASETS)})")
        epochs[name.strip()] = int(value)
    return epochs


def cases(settings) -> list[str]:
    unknown = [name for name in settings.datasets if name not in DATASETS]
    if unknown or not settings.datasets:
        raise ValueError(f"unknown data sets {unknown} (known: {', '.join(DATASETS)})")
    return settings.datasets


def load(dataset: str, settings) -> SimpleNamespace:
    loader, num_topics = DATASETS[dataset]
    data = _harness.shuffled_training(loader(data_dir=settings.data_dir, download=False))  # for the peers' passes
    print(f"{dataset}: {len(data.train)} training, {len(data.test)} test documents, {len(data.vocabulary)} words, "
          f"{num_topics} topics", file=sys.stderr, flush=True)
    return SimpleNamespace(dataset=dataset, data=data, num_topics=num_topics)


def ours(model_name: str, name: str | None = None, **fields):
    return lambda case, settings: run_ours(model_name, case, settings, name=name, **fields)


BENCHMARK = Benchmark(
    name="topics", description=__doc__.split("\n\n")[0], case="dataset", cases=cases, load=load,
    settings={"datasets": Setting(list(DATASETS), "comma-separated data sets"),
              "data_dir": Setting(DATA_DIR, "the shared data directory"),
              "epochs": Setting(DEFAULT_EPOCHS, "our models' epochs: one number for every data set, or 20news=N,bbc=M",
                                quick=QUICK_EPOCHS, type=_epochs),
              "num_samples": Setting(1000, "importance samples K of the IWAE-K perplexity (elbo evaluate's)",
                                     quick=10),
              "sklearn_iterations": Setting(10, "scikit-learn's max_iter (its default)", quick=2),
              "gensim_passes": Setting(10, "gensim's passes of 128-document chunks", quick=1),
              "gibbs_iterations": Setting(500, "Gibbs sweeps", quick=20),
              "out": Setting(REPO / "runs" / "bench" / "topics", "where our models' run directories go (replaced)"),
              "batch_size": BATCH_SIZE, "batch_sizes": BATCH_SIZES, "lr": LR, "adam_betas": ADAM_BETAS, "seed": SEED,
              "gensim_chunksize": 128, "top_words_npmi": TOP_NPMI, "top_words_diversity": TOP_DIVERSITY},
    contestants=[
        Contestant("elbo ProdLDA", ours("prodlda"), key="prodlda"),
        *(Contestant(f"elbo ProdLDA without {what}", ours("prodlda", key, **ABLATIONS[key]), key=key)
          for key, what in (("prodlda-no-bn", "batch norm"), ("prodlda-no-dropout", "dropout"))),
        Contestant("elbo NVDM", ours("nvdm"), key="nvdm"),
        Contestant("elbo Dirichlet VAE", ours("dirichlet"), key="dirichlet"),
        Contestant("sklearn LDA batch", lambda case, s: run_sklearn("batch", case, s), ("scikit-learn",),
                   key="sklearn-batch"),
        Contestant("sklearn LDA online", lambda case, s: run_sklearn("online", case, s), ("scikit-learn",),
                   key="sklearn-online"),
        Contestant("gensim LdaModel", run_gensim, ("gensim",), key="gensim"),
        Contestant("lda collapsed Gibbs", run_gibbs, ("lda",), key="gibbs")],
    score=lambda case, found, settings: {"num_topics": case.num_topics, **found},
    summarize=lambda rows, settings: {"notes": NOTES}, table=table, packages=("scipy", "scikit-learn"),
    columns=[Column("NPMI", "npmi", ".3f"), Column("diversity", "diversity", ".3f")])


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
