"""LDA by stochastic variational inference side by side (issue 15): elbo's SVI against scikit-learn's and gensim's
online LDA at the same settings, with scikit-learn's batch VB and a collapsed Gibbs sampler as references; then a
synthetic corpus of a million documents streamed from disk.

    python benchmarks/svi_lda.py --data-dir ../shared/data            # both parts (about 40 minutes on 2 cores)
    python benchmarks/svi_lda.py --part 20news                       # the first part alone (a few minutes)
    python benchmarks/svi_lda.py --part scale --documents 100000     # a smaller stream
    python benchmarks/svi_lda.py --quick                             # a smoke run of a minute

Part ``20news`` (20 Newsgroups in ProdLDA's split, 11,258 training and 7,487 test documents, 1,995 words), K = 50,
the online settings of scikit-learn's defaults for every online contestant: α = η = 1/K, τ0 = 10, κ = 0.7,
minibatches of 128, 10 passes, at most 100 local iterations to a mean change of 1e-3:

- ``elbo``: ``elbo.train.train(TrainConfig(data="20news", model=TopicConfig(model="lda", ...), batch_size=128,
  epochs=10))``, the training loop itself (shuffled minibatches, a checkpoint after each pass), float32, with the
  local step in C (``elbo.models.topics.native``); ``elbo-tensor``: the same with ``ELBO_NATIVE=0``, the local step
  as tensor code (``lda._coordinate_ascent``);
- ``sklearn-online``: ``LatentDirichletAllocation(learning_method="online", batch_size=128, max_iter=10,
  learning_offset=10, learning_decay=0.7, n_jobs=1)``; ``sklearn-batch``: ``learning_method="batch"``,
  ``max_iter=10`` (a reference: batch VB);
- ``gensim``: ``LdaModel(passes=10, chunksize=128, alpha=η=1/K, offset=10, decay=0.7, iterations=100,
  gamma_threshold=1e-3)``;
- ``gibbs``: the ``lda`` package's collapsed Gibbs sampler, 500 sweeps, α = η = 1/K (the MCMC reference).

The peers get the training documents in one fixed random order (``_harness.shuffled_training``): the file is not in
a random order, and in its order scikit-learn's online perplexity was twice ours (ours reshuffles every pass).

With ``--two-cores``, both sides also once on the machine's 2 cores: ``elbo-2-threads`` (torch's 2 intra-op
threads, one process) and ``sklearn-online-2-jobs`` (``n_jobs=2``: scikit-learn's E-step split over 2 joblib
workers).

Each contestant runs in a process of its own (so that its peak resident memory is its own), one after the other,
single-threaded (``--threads``). Measured: fit wall time and documents per second (passes × documents / fit
time); the held-out perplexity by scikit-learn's formula, ``exp(-bound / N)`` with the E-step on the test
documents and the topics' global term, computed by ``elbo.models.topics.lda.perplexity`` from each model's
``λ`` (ours; scikit-learn's ``components_``; gensim's ``state.get_lambda()``; for the Gibbs sampler its final
topic-word counts + η, the ``λ`` of its topics' conditional posterior), and each peer's own number beside it
(scikit-learn's ``perplexity()``, gensim's ``exp(-log_perplexity())``); ``elbo evaluate``'s IWAE-1000 corpus
perplexity for ours (the neural models' measure, issue 14); NPMI and diversity (``evaluation.coherence_table``);
peak RSS.

Part ``scale``: ``elbo.models.topics.synthetic.write_lda_corpus``, 1,000,000 documents (``--documents``), V =
5,000, K = 100, 100 words a document, α = 0.1, η = 0.01, seed 0, written once to ``--scale-dir`` with 10,000
held-out documents, then one pass of minibatches of 1,024 streamed from disk: ours (``--stream``) with 1 and 2
processes, and scikit-learn's ``partial_fit`` on the same stream (``elbo.models.topics.stream.FeatStream``'s
minibatches as scipy CSR). Measured: documents per second, peak RSS (the largest process's), and the topics'
recovery, the mean Hellinger distance between the true topics and the estimated ones matched by the Hungarian
algorithm (``synthetic.match_topics``).

Prints the tables and writes ``--json`` (default ``benchmarks/results/svi_lda.json``).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import _harness  # beside this script
from _harness import DATA_DIR, REPO, Benchmark, Contestant, Setting, cell, main, markdown

TOPICS, BATCH, PASSES, TAU0, KAPPA, LOCAL_ITERATIONS, TOLERANCE = 50, 128, 10, 10.0, 0.7, 100, 1e-3
SCALE = {"vocab_size": 5000, "num_topics": 100, "words_per_document": 100, "alpha": 0.1, "eta": 0.01,
         "batch": 1024, "test": 10_000}
PARTS = ("20news", "scale")


# --- part 20news: one contestant, in a worker process ----------------------------------------------------------------

def _ours_20news(name: str, data, args) -> dict:
    from elbo.configs import TrainConfig
    from elbo.evaluate import evaluate_run
    from elbo.models.topics.config import TopicConfig
    from elbo.runs import load_run
    from elbo.train import train

    config = TrainConfig(data="20news", data_dir=str(args.data_dir),
                         model=TopicConfig(model="lda", num_topics=TOPICS, tau0=TAU0, kappa=KAPPA,
                                           local_iterations=LOCAL_ITERATIONS, local_tolerance=TOLERANCE),
                         batch_size=BATCH, epochs=args.passes, seed=0)
    out = Path(args.out) / f"20news-{name}"
    start = time.perf_counter()
    train(config, out, progress=False, force=True)
    fit = time.perf_counter() - start
    model = load_run(out).model
    result = evaluate_run(out, data_dir=str(args.data_dir), num_samples=args.num_samples, iwae_samples=())
    extra = {"iwae_perplexity_corpus": result["metrics"]["perplexity_corpus_iwae"],
             "elbo_perplexity_corpus": result["metrics"]["perplexity_corpus_elbo"]}
    return {"fit_s": fit, "lam": model.lam.detach().double(), "topics": model.topics().double(), **extra}


def _sklearn_20news(method: str, data, args, jobs: int = 1) -> dict:
    import scipy.sparse
    from sklearn.decomposition import LatentDirichletAllocation

    train_x, test_x = (scipy.sparse.csr_matrix(x.numpy()) for x in (data.train, data.test))
    model = LatentDirichletAllocation(TOPICS, learning_method=method, batch_size=BATCH, max_iter=args.passes,
                                      learning_offset=TAU0, learning_decay=KAPPA, max_doc_update_iter=LOCAL_ITERATIONS,
                                      mean_change_tol=TOLERANCE, random_state=0, n_jobs=jobs)
    start = time.perf_counter()
    model.fit(train_x)
    fit = time.perf_counter() - start
    import torch

    lam = torch.as_tensor(model.components_, dtype=torch.float64)
    return {"fit_s": fit, "lam": lam, "topics": lam / lam.sum(1, keepdim=True), "own": model.perplexity(test_x)}


def _gensim_20news(data, args) -> dict:
    import logging

    import torch
    from gensim.models import LdaModel

    logging.getLogger("gensim").setLevel(logging.WARNING)
    bags, test = _harness.bag_of_words(data.train, float), _harness.bag_of_words(data.test, float)
    start = time.perf_counter()
    model = LdaModel(bags, num_topics=TOPICS, id2word=dict(enumerate(data.vocabulary)), passes=args.passes,
                     chunksize=BATCH, alpha=1.0 / TOPICS, eta=1.0 / TOPICS, offset=TAU0, decay=KAPPA,
                     iterations=LOCAL_ITERATIONS, gamma_threshold=TOLERANCE, eval_every=None, random_state=0)
    fit = time.perf_counter() - start
    lam = torch.as_tensor(model.state.get_lambda(), dtype=torch.float64)
    return {"fit_s": fit, "lam": lam, "topics": lam / lam.sum(1, keepdim=True),
            "own": math.exp(-model.log_perplexity(test))}


def _gibbs_20news(data, args) -> dict:
    import logging

    import lda
    import scipy.sparse
    import torch

    logging.getLogger("lda").setLevel(logging.WARNING)
    model = lda.LDA(n_topics=TOPICS, n_iter=args.gibbs_iterations, alpha=1.0 / TOPICS, eta=1.0 / TOPICS,
                    random_state=0, refresh=10**9)
    start = time.perf_counter()
    model.fit(scipy.sparse.csr_matrix(data.train.to(torch.int64).numpy()))
    fit = time.perf_counter() - start
    lam = torch.as_tensor(model.nzw_, dtype=torch.float64) + 1.0 / TOPICS
    return {"fit_s": fit, "lam": lam, "topics": torch.as_tensor(model.topic_word_, dtype=torch.float64),
            "passes": args.gibbs_iterations}


def score_20news(data, row: dict, args) -> dict:
    """A 20news contestant's row: from its topics' ``λ`` the perplexity by scikit-learn's formula (our code),
    NPMI, diversity, and documents per second."""
    from elbo.models.topics import lda
    from elbo.models.topics.evaluation import coherence_table
    from elbo.models.topics.metrics import diversity, top_words

    lam, weights = row.pop("lam"), row.pop("topics")
    table = coherence_table(weights, data)
    return row | {"perplexity": lda.perplexity(data.test.double(), lam, 1.0 / TOPICS, 1.0 / TOPICS,
                                               max_iter=LOCAL_ITERATIONS, tol=TOLERANCE),
                  "npmi": sum(t["npmi"] for t in table) / len(table),
                  "npmi_lau": sum(t["npmi_lau"] for t in table) / len(table),
                  "diversity": diversity(top_words(weights, 25)),
                  "documents_per_s": row.get("passes", args.passes) * len(data.train) / row["fit_s"]}


def _scale_corpus(args) -> Path:
    """The synthetic corpus's directory, written once (train.feat, test.feat, vocabulary.txt, truth.pt)."""
    import torch

    from elbo.models.topics.synthetic import write_lda_corpus, write_vocabulary

    directory = Path(args.scale_dir) / f"lda-{args.documents}"
    if (directory / "truth.pt").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    settings = {k: SCALE[k] for k in ("words_per_document", "alpha", "eta")}
    start = time.perf_counter()
    truth = write_lda_corpus(directory / "all.feat", args.documents + SCALE["test"], SCALE["vocab_size"],
                             SCALE["num_topics"], seed=0, **settings)
    with open(directory / "all.feat") as lines, open(directory / "train.feat", "w") as train, \
            open(directory / "test.feat", "w") as test:
        for number, line in enumerate(lines):
            (train if number < args.documents else test).write(line)
    (directory / "all.feat").unlink()
    write_vocabulary(directory / "vocabulary.txt", SCALE["vocab_size"])
    torch.save({"topics": truth}, directory / "truth.pt")
    print(f"  wrote {args.documents} documents to {directory} in {time.perf_counter() - start:.0f} s", file=sys.stderr,
          flush=True)
    return directory


def score_scale(directory: Path, row: dict, args) -> dict:
    """A scale contestant's row: documents per second and the recovery of the true topics."""
    import torch

    from elbo.models.topics.synthetic import match_topics

    truth = torch.load(directory / "truth.pt", weights_only=True)["topics"]
    match = match_topics(row.pop("topics"), truth)
    return row | {"documents_per_s": args.documents / row["fit_s"], "hellinger": match.distance,
                  "hellinger_max": float(match.distances.max())}


def _ours_scale(processes: int, directory: Path, args) -> dict:
    from elbo.configs import TrainConfig
    from elbo.models.topics.config import TextOptions, TopicConfig
    from elbo.runs import load_run
    from elbo.train import train

    config = TrainConfig(data="corpus", data_dir=str(directory), data_options=TextOptions(stream=True),
                         model=TopicConfig(model="lda", num_topics=SCALE["num_topics"], tau0=TAU0, kappa=KAPPA),
                         batch_size=SCALE["batch"], epochs=1, seed=0)
    out = Path(args.out) / f"scale-elbo-{processes}"
    start = time.perf_counter()
    train(config, out, nproc=processes, progress=False, force=True)
    return {"topics": load_run(out).model.topics().double(), "fit_s": time.perf_counter() - start}


def _sklearn_scale(directory: Path, args) -> dict:
    import numpy as np
    import scipy.sparse
    import torch
    from sklearn.decomposition import LatentDirichletAllocation

    from elbo.models.topics.stream import FeatStream

    model = LatentDirichletAllocation(SCALE["num_topics"], learning_method="online", learning_offset=TAU0,
                                      learning_decay=KAPPA, total_samples=args.documents, random_state=0, n_jobs=1)
    start = time.perf_counter()
    stream = FeatStream(directory / "train.feat", SCALE["vocab_size"])
    for batch in stream.batches(SCALE["batch"], dtype=torch.float64):
        model.partial_fit(scipy.sparse.csr_matrix((batch.counts.numpy(), batch.word_ids.numpy(),
                                                   batch.offsets.numpy()), shape=(len(batch), batch.vocab_size)))
    fit = time.perf_counter() - start
    lam = torch.as_tensor(np.asarray(model.components_), dtype=torch.float64)
    return {"topics": lam / lam.sum(1, keepdim=True), "fit_s": fit}


# --- the benchmark ---------------------------------------------------------------------------------------------

COLUMNS = {  # the columns of each part's table: header, the row's key, the cell's format
    "20news": [("fit s", "fit_s", ".1f"), ("docs/s", "documents_per_s", ".0f"), ("× scikit-learn's", "speedup", ".2f"),
               ("perplexity (sklearn's formula, our code)", "perplexity", ".1f"), ("its own", "own", ".1f"),
               ("IWAE-K perplexity", "iwae_perplexity_corpus", ".1f"), ("NPMI", "npmi", ".3f"),
               ("NPMI, Lau", "npmi_lau", ".3f"), ("diversity", "diversity", ".3f"),
               ("peak RSS MiB", "peak_rss_mib", ".0f")],
    "scale": [("fit s", "fit_s", ".1f"), ("docs/s", "documents_per_s", ".0f"), ("× scikit-learn's", "speedup", ".2f"),
              ("matched Hellinger, mean", "hellinger", ".4f"), ("worst", "hellinger_max", ".4f"),
              ("peak RSS MiB", "peak_rss_mib", ".0f")],
}
REFERENCE = {"20news": "sklearn-online", "scale": "sklearn-partial-fit"}  # the speed-ups' denominators


def cases(args) -> list[str]:
    return list(PARTS) if args.part == "all" else [args.part]


def load(part: str, args):
    if part == "scale":
        return SimpleNamespace(part=part, directory=_scale_corpus(args))
    from elbo.models.topics.datasets import load_20news

    return SimpleNamespace(part=part, data=_harness.shuffled_training(load_20news(data_dir=args.data_dir)))


def score(case, found: dict, args) -> dict:
    return score_scale(case.directory, found, args) if case.part == "scale" else score_20news(case.data, found, args)


def rows(result: dict) -> list[dict]:
    """The rows, each with its part; older results kept them as two dictionaries by contestant."""
    if isinstance(result["rows"], list):
        return result["rows"]
    return [{"part": part, "key": key, "contestant": key, **row} for part, found in
            (("20news", result["rows"]), ("scale", result.get("scale", {}))) for key, row in found.items()]


def table(result: dict) -> str:
    """Each part's table, with each row's documents per second over scikit-learn's online LDA's (not for the
    Gibbs sampler, whose passes are sweeps, not the variational methods' passes)."""
    settings, found, out = result["settings"], rows(result), []
    titles = {"20news": f"20news, K = {settings['topics']} (IWAE K = {settings.get('num_samples', settings.get('k'))})",
              "scale": f"{settings['documents']} streamed documents, K = {settings['scale']['num_topics']}"}
    for part in PARTS:
        part_rows = [row for row in found if row["part"] == part]
        if not part_rows:
            continue
        base = next((row.get("documents_per_s") for row in part_rows if row["key"] == REFERENCE[part]), None)
        lines = []
        for row in part_rows:
            speedup = row["documents_per_s"] / base if base and row.get("documents_per_s") and "passes" not in row \
                else None
            problem = row.get("error") or row.get("skipped")
            lines.append([row["key"]] + ([problem] if problem else [
                cell(speedup if name == "speedup" else row.get(name), spec) for _, name, spec in COLUMNS[part]]))
        out += [markdown([titles[part], *(header for header, _, _ in COLUMNS[part])], lines,
                         [False] + [True] * len(COLUMNS[part])), ""]
    measured = result.get("scale_measured")
    if measured:
        out.append(f"Scale rows: {measured['note']} (commit {measured['commit']}, load average "
                   f"{', '.join(f'{x:.2f}' for x in measured['load_average_start'])} at the start).")
    return "\n".join(out)


def tensor_step(data, args) -> dict:
    os.environ["ELBO_NATIVE"] = "0"  # read at the local step's first use, in this contestant's own process
    return _ours_20news("elbo-tensor", data, args)


def two_threads(data, args) -> dict:
    import torch

    torch.set_num_threads(2)
    return _ours_20news("elbo-2-threads", data, args)


def on_20news(name: str, run, packages=(), **more) -> Contestant:
    return Contestant(name, lambda case, args: run(case.data, args), packages, cases=("20news",), isolated=True,
                      **more)


def on_scale(name: str, run) -> Contestant:
    return Contestant(name, lambda case, args: run(case.directory, args), cases=("scale",), isolated=True)


def two_cores(args) -> bool:
    return args.two_cores


BENCHMARK = Benchmark(
    name="svi_lda", description=__doc__.split("\n\n")[0], case="part", cases=cases, load=load, score=score,
    settings={"part": Setting("all", "which part", choices=("all", *PARTS)),
              "data_dir": Setting(DATA_DIR, "the shared data directory"),
              "documents": Setting(1_000_000, "documents of the scale part", quick=20_000),
              "scale_dir": Setting(Path("/tmp/elbo-bench"), "where the synthetic corpus is written once and kept"),
              "passes": Setting(PASSES, "passes over 20news", quick=2),
              "num_samples": Setting(1000, "importance samples K of our IWAE-K perplexity", quick=20),
              "gibbs_iterations": Setting(500, "Gibbs sweeps", quick=20),
              "two_cores": Setting(False, "also ours on 2 threads and scikit-learn's on 2 jobs (meaningless on a "
                                          "busy machine)"),
              "out": Setting(REPO / "runs" / "bench" / "svi_lda", "where our run directories go (replaced)"),
              "topics": TOPICS, "batch": BATCH, "tau0": TAU0, "kappa": KAPPA, "local_iterations": LOCAL_ITERATIONS,
              "tolerance": TOLERANCE, "scale": SCALE},
    contestants=[
        on_20news("elbo", lambda data, args: _ours_20news("elbo", data, args)),
        on_20news("sklearn-online", lambda data, args: _sklearn_20news("online", data, args), ("scikit-learn",)),
        on_20news("elbo-tensor", tensor_step),
        on_20news("gensim", _gensim_20news, ("gensim",)),
        on_20news("sklearn-batch", lambda data, args: _sklearn_20news("batch", data, args), ("scikit-learn",)),
        on_20news("gibbs", _gibbs_20news, ("lda",)),
        on_20news("elbo-2-threads", two_threads, when=two_cores),
        on_20news("sklearn-online-2-jobs", lambda data, args: _sklearn_20news("online", data, args, jobs=2),
                  ("scikit-learn",), when=two_cores),
        on_scale("elbo-1", lambda directory, args: _ours_scale(1, directory, args)),
        on_scale("elbo-2", lambda directory, args: _ours_scale(2, directory, args)),
        on_scale("sklearn-partial-fit", _sklearn_scale)],
    rows=rows, table=table, packages=("scipy", "scikit-learn"))


if __name__ == "__main__":
    sys.exit(main(BENCHMARK))
