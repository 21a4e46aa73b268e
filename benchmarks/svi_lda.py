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

The peers get the training documents in one fixed random order (``_common.shuffled_training``): the file is not in
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

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import _common  # benchmarks/_common.py, beside this script
from _common import cell

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()
TOPICS, BATCH, PASSES, TAU0, KAPPA, LOCAL_ITERATIONS, TOLERANCE = 50, 128, 10, 10.0, 0.7, 100, 1e-3
SCALE = {"vocab_size": 5000, "num_topics": 100, "words_per_document": 100, "alpha": 0.1, "eta": 0.01,
         "batch": 1024, "test": 10_000}
CONTESTANTS = ("elbo", "sklearn-online", "elbo-tensor", "gensim", "sklearn-batch", "gibbs")
TWO_CORES = ("elbo-2-threads", "sklearn-online-2-jobs")  # --two-cores: on a machine with nothing else running
SCALE_CONTESTANTS = ("elbo-1", "elbo-2", "sklearn-partial-fit")


def _peak_rss_mib() -> float:
    """The peak resident memory of this process and of its children, the larger, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


# --- part 20news: one contestant, in a worker process ----------------------------------------------------------------

def _ours_20news(args, data) -> dict:
    from elbo.configs import TrainConfig
    from elbo.evaluate import evaluate_run
    from elbo.models.topics.config import TopicConfig
    from elbo.runs import load_run
    from elbo.train import train

    config = TrainConfig(data="20news", data_dir=str(args.data_dir),
                         model=TopicConfig(model="lda", num_topics=TOPICS, tau0=TAU0, kappa=KAPPA,
                                           local_iterations=LOCAL_ITERATIONS, local_tolerance=TOLERANCE),
                         batch_size=BATCH, epochs=args.passes, seed=0)
    out = Path(args.out) / f"20news-{args.worker}"
    start = time.perf_counter()
    train(config, out, progress=False, force=True)
    fit = time.perf_counter() - start
    model = load_run(out).model
    result = evaluate_run(out, data_dir=str(args.data_dir), num_samples=args.k, iwae_samples=())
    extra = {"iwae_perplexity_corpus": result["metrics"]["perplexity_corpus_iwae"],
             "elbo_perplexity_corpus": result["metrics"]["perplexity_corpus_elbo"]}
    return {"fit_s": fit, "lam": model.lam.detach().double(), "topics": model.topics().double(), **extra}


def _sklearn_20news(args, data, method: str, jobs: int = 1) -> dict:
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


def _gensim_20news(args, data) -> dict:
    import logging

    import torch
    from gensim.models import LdaModel

    logging.getLogger("gensim").setLevel(logging.WARNING)
    bags = [[(int(i), float(row[i])) for i in row.nonzero().flatten()] for row in data.train]
    test = [[(int(i), float(row[i])) for i in row.nonzero().flatten()] for row in data.test]
    start = time.perf_counter()
    model = LdaModel(bags, num_topics=TOPICS, id2word=dict(enumerate(data.vocabulary)), passes=args.passes,
                     chunksize=BATCH, alpha=1.0 / TOPICS, eta=1.0 / TOPICS, offset=TAU0, decay=KAPPA,
                     iterations=LOCAL_ITERATIONS, gamma_threshold=TOLERANCE, eval_every=None, random_state=0)
    fit = time.perf_counter() - start
    lam = torch.as_tensor(model.state.get_lambda(), dtype=torch.float64)
    return {"fit_s": fit, "lam": lam, "topics": lam / lam.sum(1, keepdim=True),
            "own": math.exp(-model.log_perplexity(test))}


def _gibbs_20news(args, data) -> dict:
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


def worker_20news(args) -> dict:
    import torch

    from elbo.models.topics import lda
    from elbo.models.topics.datasets import load_20news
    from elbo.models.topics.evaluation import coherence_table
    from elbo.models.topics.metrics import diversity, top_words

    torch.set_num_threads(2 if args.worker == "elbo-2-threads" else args.threads)
    data = _common.shuffled_training(load_20news(data_dir=args.data_dir))
    fits = {"elbo": lambda: _ours_20news(args, data), "sklearn-online": lambda: _sklearn_20news(args, data, "online"),
            "elbo-tensor": lambda: _ours_20news(args, data), "elbo-2-threads": lambda: _ours_20news(args, data),
            "sklearn-online-2-jobs": lambda: _sklearn_20news(args, data, "online", jobs=2),
            "sklearn-batch": lambda: _sklearn_20news(args, data, "batch"), "gensim": lambda: _gensim_20news(args, data),
            "gibbs": lambda: _gibbs_20news(args, data)}
    row = fits[args.worker]()
    lam, weights = row.pop("lam"), row.pop("topics")
    table = coherence_table(weights, data)
    row.update(perplexity=lda.perplexity(data.test.double(), lam, 1.0 / TOPICS, 1.0 / TOPICS,
                                         max_iter=LOCAL_ITERATIONS, tol=TOLERANCE),
               npmi=sum(t["npmi"] for t in table) / len(table), npmi_lau=sum(t["npmi_lau"] for t in table) / len(table),
               diversity=diversity(top_words(weights, 25)), peak_rss_mib=_peak_rss_mib(),
               documents_per_s=row.get("passes", args.passes) * len(data.train) / row["fit_s"])
    return row


# --- part scale ----------------------------------------------------------------------------------------------------

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
    print(f"  wrote {args.documents} documents to {directory} in {time.perf_counter() - start:.0f} s", flush=True)
    return directory


def worker_scale(args) -> dict:
    import torch

    from elbo.models.topics.synthetic import match_topics

    torch.set_num_threads(args.threads)
    directory = Path(args.scale_dir) / f"lda-{args.documents}"
    truth = torch.load(directory / "truth.pt", weights_only=True)["topics"]
    if args.worker.startswith("elbo"):
        topics, fit = _ours_scale(args, directory, int(args.worker.split("-")[1]))
    else:
        topics, fit = _sklearn_scale(args, directory)
    match = match_topics(topics, truth)
    return {"fit_s": fit, "documents_per_s": args.documents / fit, "hellinger": match.distance,
            "hellinger_max": float(match.distances.max()), "peak_rss_mib": _peak_rss_mib()}


def _ours_scale(args, directory: Path, processes: int):
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
    return load_run(out).model.topics().double(), time.perf_counter() - start


def _sklearn_scale(args, directory: Path):
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
    return lam / lam.sum(1, keepdim=True), fit


# --- the driver ------------------------------------------------------------------------------------------------------

def run_worker(args, part: str, key: str) -> dict:
    """``key`` of ``part`` in a fresh process; its row (or the error it printed)."""
    command = [sys.executable, __file__, "--worker", key, "--part", part] + [
        f"--{name.replace('_', '-')}={value}" for name, value in vars(args).items()
        if name in ("data_dir", "out", "threads", "passes", "k", "gibbs_iterations", "documents", "scale_dir")]
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
                   "OPENBLAS_NUM_THREADS": str(args.threads), **({"ELBO_NATIVE": "0"} if key == "elbo-tensor" else {})}
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


TABLES = {  # the columns of each part's table: header, the row's key, the cell's format
    "20news": [("fit s", "fit_s", ".1f"), ("docs/s", "documents_per_s", ".0f"), ("× scikit-learn's", "speedup", ".2f"),
               ("perplexity (sklearn's formula, our code)", "perplexity", ".1f"), ("its own", "own", ".1f"),
               ("IWAE-K perplexity", "iwae_perplexity_corpus", ".1f"), ("NPMI", "npmi", ".3f"),
               ("NPMI, Lau", "npmi_lau", ".3f"), ("diversity", "diversity", ".3f"),
               ("peak RSS MiB", "peak_rss_mib", ".0f")],
    "scale": [("fit s", "fit_s", ".1f"), ("docs/s", "documents_per_s", ".0f"), ("× scikit-learn's", "speedup", ".2f"),
              ("matched Hellinger, mean", "hellinger", ".4f"), ("worst", "hellinger_max", ".4f"),
              ("peak RSS MiB", "peak_rss_mib", ".0f")],
}


def _speedups(rows: dict, reference: str) -> None:
    """Each row's documents per second over the reference's (scikit-learn's online LDA), as ``speedup``; not for
    the Gibbs sampler, whose passes (``row["passes"]``, sweeps) are not the variational methods'."""
    base = rows.get(reference, {}).get("documents_per_s")
    for row in rows.values():
        if base and row.get("documents_per_s") and "passes" not in row:
            row["speedup"] = row["documents_per_s"] / base


def print_table(title: str, columns, rows: dict) -> None:
    print(f"\n| {title} | " + " | ".join(header for header, _, _ in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for key, row in rows.items():
        cells = [f"error: {row['error']}"] if "error" in row else [cell(row.get(name), spec)
                                                                  for _, name, spec in columns]
        print(f"| {key} | " + " | ".join(cells) + " |")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--part", choices=("all", "20news", "scale"), default="all")
    parser.add_argument("--documents", type=int, default=None, help="documents of the scale part [1000000]")
    parser.add_argument("--scale-dir", type=Path, default=Path("/tmp/elbo-bench"),
                        help="where the synthetic corpus is written once and kept")
    parser.add_argument("--passes", type=int, default=PASSES)
    parser.add_argument("--k", type=int, default=1000, help="K of our IWAE-K perplexity")
    parser.add_argument("--gibbs-iterations", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--two-cores", action="store_true",
                        help="also ours on 2 threads and scikit-learn's on 2 jobs (meaningless on a busy machine)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "svi_lda")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 passes, 20,000 documents, K = 20")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.passes, args.k, args.gibbs_iterations = 2, 20, 20
        args.documents = args.documents or 20_000
    args.documents = args.documents or 1_000_000
    args.json = args.json or (args.out / "svi_lda-quick.json" if args.quick else
                              REPO / "benchmarks" / "results" / "svi_lda.json")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        row = (worker_scale if args.part == "scale" else worker_20news)(args)
        print(json.dumps(row))
        return 0
    load_start, started = os.getloadavg(), time.perf_counter()
    print(f"load average at start (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_start)}; elbo at "
          f"{_common.commit()}; {args.threads} thread(s) a process", flush=True)
    rows, scale = {}, {}
    if args.part in ("all", "20news"):
        for key in CONTESTANTS + (TWO_CORES if args.two_cores else ()):
            rows[key] = run_worker(args, "20news", key)
            print(f"  20news {key}: {rows[key]}", flush=True)
    if args.part in ("all", "scale"):
        _scale_corpus(args)
        for key in SCALE_CONTESTANTS:
            scale[key] = run_worker(args, "scale", key)
            print(f"  scale {key}: {scale[key]}", flush=True)
    _speedups(rows, "sklearn-online")
    _speedups(scale, "sklearn-partial-fit")
    if rows:
        print_table(f"20news, K = {TOPICS} (IWAE K = {args.k})", TABLES["20news"], rows)
    if scale:
        print_table(f"{args.documents} streamed documents, K = {SCALE['num_topics']}", TABLES["scale"], scale)
    load_end = os.getloadavg()
    print(f"\nload average at end: {', '.join(f'{x:.2f}' for x in load_end)}; "
          f"total {(time.perf_counter() - started) / 60:.1f} min")
    args.out.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    settings = {"topics": TOPICS, "batch": BATCH, "passes": args.passes, "tau0": TAU0, "kappa": KAPPA,
                "local_iterations": LOCAL_ITERATIONS, "tolerance": TOLERANCE, "k": args.k, "scale": SCALE,
                "documents": args.documents, "threads": args.threads, "gibbs_iterations": args.gibbs_iterations}
    args.json.write_text(json.dumps({"settings": settings, "commit": _common.commit(), "load_average_start": load_start,
                                     "load_average_end": load_end, "rows": rows, "scale": scale}, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
