"""Topic models side by side (issue 14): elbo's ProdLDA and NVDM against scikit-learn's and gensim's variational LDA
and a collapsed Gibbs sampler, on the same data, splits and metric code.

    python benchmarks/topics.py --data-dir ../shared/data                  # the full run (7 minutes, one thread)
    python benchmarks/topics.py --quick                                    # a smoke run of a minute or two
    python benchmarks/topics.py --datasets bbc --contestants prodlda,sklearn-batch --k 20

Data sets (``elbo.models.topics.datasets``): ``20news``, 20 Newsgroups in ProdLDA's split (11,258 training, 7,487
test documents, 1,995 words), with 50 topics; ``bbc``, BBC News as OCTIS split it (1,556 / 334 / 335 documents,
2,949 words, five classes), with 20 topics. Every contestant fits on the training split's counts and is measured
on the test split; the validation split is unused.

The peers get the training documents in one fixed random order (``_common.shuffled_training``): their online
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

Prints one markdown table and writes ``--json``: the settings, the versions, the load average at the start and the
end, every row (with each model's topics) and the notes. A contestant that raises is recorded as an error row; a
peer whose package is not installed is skipped with the reason.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import math
import os
import platform
import time
from pathlib import Path

import _common  # benchmarks/_common.py, beside this script
import numpy as np
import torch
from _common import cell

import elbo
from elbo._files import write_json
from elbo.configs import TrainConfig
from elbo.evaluate import evaluate_run
from elbo.models.topics import metrics as measures
from elbo.models.topics.config import TopicConfig
from elbo.models.topics.datasets import load_20news, load_bbc
from elbo.models.topics.evaluation import coherence_table
from elbo.train import train

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
DATASETS = {"20news": (load_20news, 50), "bbc": (load_bbc, 20)}  # loader, number of topics
DEFAULT_EPOCHS = {"20news": 100, "bbc": 500}  # bbc: 8 steps an epoch, so 4000 steps against 20news's 5700
QUICK_EPOCHS = {"20news": 2, "bbc": 10}
CONTESTANTS = ("prodlda", "prodlda-no-bn", "prodlda-no-dropout", "nvdm", "dirichlet", "sklearn-batch", "sklearn-online",
               "gensim", "gibbs")
ABLATIONS = {"prodlda-no-bn": {"batch_norm": False}, "prodlda-no-dropout": {"dropout": 0.0}}  # of ProdLDA's defaults
NAMES = {"prodlda": "elbo ProdLDA", "prodlda-no-bn": "elbo ProdLDA without batch norm",
         "prodlda-no-dropout": "elbo ProdLDA without dropout", "nvdm": "elbo NVDM", "dirichlet": "elbo Dirichlet VAE",
         "sklearn-batch": "sklearn LDA batch", "sklearn-online": "sklearn LDA online", "gensim": "gensim LdaModel",
         "gibbs": "lda collapsed Gibbs"}
PACKAGES = {"sklearn-batch": "scikit-learn", "sklearn-online": "scikit-learn", "gensim": "gensim", "gibbs": "lda"}
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


def run_ours(model_name: str, dataset: str, data, num_topics: int, args, *, name: str | None = None,
             **fields) -> dict:
    config = TrainConfig(data=dataset, data_dir=str(args.data_dir),
                         model=TopicConfig(model=model_name, num_topics=num_topics, **fields), objective="elbo",
                         epochs=args.epochs[dataset], batch_size=BATCH_SIZES.get(model_name, BATCH_SIZE), lr=LR,
                         adam_betas=ADAM_BETAS, seed=SEED)
    out = args.out / f"{dataset}-{name or model_name}"
    start = time.perf_counter()
    train(config, out, progress=False, force=True)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    result = evaluate_run(out, data_dir=str(args.data_dir), num_samples=args.k, iwae_samples=())
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


def run_sklearn(method: str, dataset: str, data, num_topics: int, args) -> dict:
    import scipy.sparse
    from sklearn.decomposition import LatentDirichletAllocation

    train_x, test_x = (scipy.sparse.csr_matrix(x.numpy()) for x in (data.train, data.test))
    model = LatentDirichletAllocation(n_components=num_topics, learning_method=method, max_iter=args.sklearn_iter,
                                      random_state=SEED)
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


def _bag(x: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Dense counts as gensim's bag-of-words corpus: one ``[(word id, count), ...]`` per document."""
    counts = x.to(torch.int64).numpy()
    return [[(int(j), int(row[j])) for j in np.flatnonzero(row)] for row in counts]


def run_gensim(dataset: str, data, num_topics: int, args) -> dict:
    from gensim.models import LdaModel

    logging.getLogger("gensim").setLevel(logging.WARNING)
    corpus, test = _bag(data.train), _bag(data.test)
    start = time.perf_counter()
    model = LdaModel(corpus, num_topics=num_topics, id2word=dict(enumerate(data.vocabulary)),
                     passes=args.gensim_passes, chunksize=128, eval_every=None, random_state=SEED)
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


def run_gibbs(dataset: str, data, num_topics: int, args) -> dict:
    import lda
    import scipy.sparse

    logging.getLogger("lda").setLevel(logging.WARNING)
    train_x, test_x = (scipy.sparse.csr_matrix(x.to(torch.int64).numpy()) for x in (data.train, data.test))
    model = lda.LDA(n_topics=num_topics, n_iter=args.gibbs_iterations, random_state=SEED, refresh=10**9)
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


def run_contestant(key: str, dataset: str, data, num_topics: int, args) -> dict:
    if key in ("prodlda", "nvdm", "dirichlet"):
        return run_ours(key, dataset, data, num_topics, args)
    if key in ABLATIONS:
        return run_ours("prodlda", dataset, data, num_topics, args, name=key, **ABLATIONS[key])
    if key.startswith("sklearn"):
        return run_sklearn(key.removeprefix("sklearn-"), dataset, data, num_topics, args)
    if key == "gensim":
        return run_gensim(dataset, data, num_topics, args)
    return run_gibbs(dataset, data, num_topics, args)


def missing_package(key: str) -> str | None:
    """Why a peer cannot run here (its package is not installed), or None."""
    package = PACKAGES.get(key)
    if package is None:
        return None
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return f"skipped: {package} is not installed (pip install {package}; it is in the bench extra)"
    return None


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


def print_table(rows, k: int):
    print(f"\n| data | topics | contestant | fit s | eval s | NPMI | NPMI, Lau | NPMI, test | c_npmi, gensim | "
          f"diversity (top 25) | accuracy | perplexity, corpus | perplexity, per doc | perplexity from (K = {k} for "
          f"IWAE) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        head = f"| {row['dataset']} | {row['num_topics']} | {row['contestant']} |"
        if row.get("error") or row.get("skipped"):
            print(f"{head} - | - | - | - | - | - | - | - | - | - | {row.get('error') or row['skipped']} |")
            continue
        for i, (corpus, per_doc, formula) in enumerate(perplexity_lines(row, k)):
            if i == 0:
                print(f"{head} {cell(row['fit_s'], '.1f')} | {cell(row['eval_s'], '.1f')} | "
                      + " | ".join(cell(row.get(key), ".3f") for key in NPMI_COLUMNS) + " | "
                      f"{cell(row['diversity'], '.3f')} | {cell(row['accuracy'], '.3f')} | {corpus} | {per_doc} | "
                      f"{formula} |")
            else:
                print(f"| | | | | | | | | | | | {corpus} | {per_doc} | {formula} |")
    print("\nNotes:")
    for note in NOTES:
        print(f"- {note}")


def versions() -> dict:
    commit = _common.commit()
    found = {"python": platform.python_version(), "elbo": f"{elbo.__version__} at {commit}",
             "torch": torch.__version__, "numpy": np.__version__}
    for package in ("scipy", "scikit-learn", "gensim", "lda"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found | {"platform": platform.platform(), "cpus": os.cpu_count()}


# --- the run ---------------------------------------------------------------------------------------------------


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


def _subset(text: str, known, what: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in known]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown} (known: {', '.join(known)})")
    return chosen


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="elbo's ProdLDA and NVDM against scikit-learn's LDA (batch, online), gensim's LdaModel and a "
                    "collapsed Gibbs sampler (lda) on 20news (50 topics) and bbc (20 topics): fit time, NPMI, "
                    "diversity, BBC accuracy, perplexity by each row's own formula. The module docstring says what "
                    "is measured.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="the shared data directory")
    parser.add_argument("--epochs", type=_epochs, default=None,
                        help="our models' epochs: one number for every data set, or 20news=N,bbc=M "
                             f"(default {DEFAULT_EPOCHS}; --quick: {QUICK_EPOCHS})")
    parser.add_argument("--k", type=int, default=None, help="importance samples K of the IWAE-K perplexity "
                                                            "(default 1000, as elbo evaluate's; --quick: 10)")
    parser.add_argument("--contestants", type=lambda s: _subset(s, CONTESTANTS, "contestants"),
                        default=list(CONTESTANTS), help=f"comma-separated subset of {','.join(CONTESTANTS)}")
    parser.add_argument("--datasets", type=lambda s: _subset(s, DATASETS, "data sets"), default=list(DATASETS),
                        help=f"comma-separated subset of {','.join(DATASETS)}")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: few epochs, K = 10, 2 scikit-learn iterations, 1 gensim pass, 20 Gibbs "
                             "sweeps; writes to --out unless --json is given")
    parser.add_argument("--gibbs-iterations", type=int, default=None, help="Gibbs sweeps (default 500; --quick 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads and BLAS/OpenMP threads")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "topics",
                        help="where our models' run directories go (replaced)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the rows (default benchmarks/results/topics.json; --quick: "
                             "OUT/topics-quick.json)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.epochs = args.epochs or dict(QUICK_EPOCHS if quick else DEFAULT_EPOCHS)
    args.k = args.k or (10 if quick else 1000)
    args.gibbs_iterations = args.gibbs_iterations or (20 if quick else 500)
    args.sklearn_iter = 2 if quick else 10
    args.gensim_passes = 1 if quick else 10
    args.json = args.json or (args.out / "topics-quick.json" if quick else REPO / "benchmarks" / "results" /
                              "topics.json")
    return args


def settings_of(args) -> dict:
    return {"datasets": {name: {"num_topics": DATASETS[name][1]} for name in args.datasets},
            "contestants": args.contestants, "quick": args.quick, "epochs": {d: args.epochs[d] for d in args.datasets},
            "k": args.k, "batch_size": BATCH_SIZE, "batch_sizes": BATCH_SIZES, "lr": LR, "adam_betas": ADAM_BETAS,
            "seed": SEED,
            "sklearn_max_iter": args.sklearn_iter, "gensim_passes": args.gensim_passes, "gensim_chunksize": 128,
            "gibbs_iterations": args.gibbs_iterations, "threads": args.threads, "data_dir": str(args.data_dir),
            "out": str(args.out), "top_words_npmi": TOP_NPMI, "top_words_diversity": TOP_DIVERSITY}


def run_all(args) -> list[dict]:
    rows = []
    for dataset in args.datasets:
        loader, num_topics = DATASETS[dataset]
        data = _common.shuffled_training(loader(data_dir=args.data_dir, download=False))  # for the peers' passes
        print(f"{dataset}: {len(data.train)} training, {len(data.test)} test documents, {len(data.vocabulary)} "
              f"words, {num_topics} topics", flush=True)
        for key in args.contestants:
            row = {"dataset": dataset, "num_topics": num_topics, "key": key, "contestant": NAMES[key]}
            reason = missing_package(key)
            if reason:
                row["skipped"] = reason
                print(f"  {NAMES[key]}: {reason}", flush=True)
                rows.append(row)
                continue
            try:
                row |= run_contestant(key, dataset, data, num_topics, args)
                status = (f"fit {row['fit_s']:.1f} s, eval {row['eval_s']:.1f} s, NPMI {row['npmi']:.3f}, "
                          f"diversity {row['diversity']:.3f}")
            except Exception as error:  # one contestant's failure must not stop the run
                status = _common.record_failure(row, error)
            rows.append(row)
            print(f"  {NAMES[key]}: {status}", flush=True)
    return rows


def main(argv=None):
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    start = time.perf_counter()
    load_start = os.getloadavg()
    print(f"load average at start (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_start)}")
    print(", ".join(f"{name} {version}" for name, version in versions().items()))
    print(f"ours: {args.epochs} epochs, batch {BATCH_SIZE} ({BATCH_SIZES} apart), Adam(lr={LR}, betas={ADAM_BETAS}), "
          f"IWAE K = {args.k}; "
          f"sklearn max_iter {args.sklearn_iter}; gensim {args.gensim_passes} passes of 128; Gibbs "
          f"{args.gibbs_iterations} sweeps; {args.threads} thread(s){'; QUICK smoke run' if args.quick else ''}\n",
          flush=True)
    rows = run_all(args)
    print_table(rows, args.k)
    total = time.perf_counter() - start
    load_end = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, {"settings": settings_of(args), "versions": versions(), "load_average_start": load_start,
                           "load_average_end": load_end, "total_seconds": total, "notes": NOTES, "rows": rows})
    print(f"\nrows: {args.json}")
    print(f"load average at end (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_end)}; total {total / 60:.1f} min")


if __name__ == "__main__":
    main()
