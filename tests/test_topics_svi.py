"""LDA by SVI as a model of the topics kind (elbo.models.topics.svi): its step is lda.OnlineLDA's, elbo.train takes
it, streamed or in memory, resumes it exactly, two processes take one's step, and evaluation bounds its evidence."""

import json

import pytest
import torch

from elbo import cli, evaluate, runs, train
from elbo.configs import TrainConfig
from elbo.models.topics.config import TextOptions, TopicConfig
from elbo.models.topics.lda import OnlineLDA
from elbo.models.topics.svi import LDA
from elbo.models.topics.synthetic import generate_lda_corpus, match_topics, write_lda_corpus, write_vocabulary

DDP_TIMEOUT = 300
VOCAB, TOPICS = 60, 4


def _corpus(directory, documents=400, *, seed=0, test=50):
    """A synthetic LDA corpus as ``train.feat`` and ``test.feat`` (its last ``test`` documents) and
    ``vocabulary.txt``; its true topics."""
    directory.mkdir(parents=True, exist_ok=True)
    truth = write_lda_corpus(directory / "all.feat", documents + test, VOCAB, TOPICS, words_per_document=40,
                             seed=seed)
    lines = (directory / "all.feat").read_text().splitlines(keepends=True)
    (directory / "train.feat").write_text("".join(lines[:documents]))
    (directory / "test.feat").write_text("".join(lines[documents:]))
    (directory / "all.feat").unlink()
    write_vocabulary(directory / "vocabulary.txt", VOCAB)
    return directory, torch.as_tensor(truth)


def _config(directory, *, stream=False, epochs=2, **fields):
    model = TopicConfig(model="lda", num_topics=TOPICS, **fields)
    return TrainConfig(data="corpus", data_dir=str(directory), data_options=TextOptions(stream=stream), model=model,
                       epochs=epochs, batch_size=40, seed=3)


def test_a_step_is_online_ldas_step_from_the_same_state():
    """From the same λ and the same starting γ, ``LDA.update`` moves λ exactly as ``OnlineLDA.update`` does
    (scikit-learn's ``partial_fit``, which tests/test_topics_lda.py checks), and returns each document's bound."""
    corpus = generate_lda_corpus(120, VOCAB, TOPICS, words_per_document=30, seed=1)
    x = corpus.dense()
    model = LDA(TopicConfig(model="lda", num_topics=TOPICS, vocab_size=VOCAB, total_documents=1000, tau0=4.0))
    reference = OnlineLDA(TOPICS, VOCAB, total_documents=1000, tau0=4.0, lam=model.lam.detach().clone(),
                          dtype=torch.float64)
    for start in (0, 40, 80):
        state = torch.get_rng_state()
        gamma0 = torch.distributions.Gamma(torch.tensor(100.0), torch.tensor(100.0)).sample((40, TOPICS))
        torch.set_rng_state(state)
        bounds = model.update(x[start:start + 40])
        reference.update(x[start:start + 40], initial_gamma=gamma0)
        torch.testing.assert_close(model.lam.detach(), reference.lam, rtol=1e-12, atol=0)
        assert bounds.shape == (40,) and bool((bounds < 0).all())
    assert int(model.num_updates) == 3


def test_a_streamed_run_trains_resumes_exactly_and_recovers_the_topics(tmp_path):
    """Streamed from disk (``stream=True``), one epoch then ``resume`` to ten gives the checkpoint of ten epochs in
    one go, bit for bit. The loop's topics are those of the truth, up to LDA's local optima: with this seed one
    estimated topic dies (stays near uniform) and another covers two true ones, so two of the four are within
    Hellinger distance 0.1 of a true topic and the mean is below a random model's (above 0.5; that a single start
    recovers every topic is not promised, tests/test_topics_lda.py keeps the best of 4)."""
    directory, truth = _corpus(tmp_path / "corpus", 600)
    whole = train.train(_config(directory, stream=True, epochs=10), tmp_path / "whole", progress=False)
    part = train.train(_config(directory, stream=True, epochs=10), tmp_path / "part", progress=False, time_limit=0)
    assert torch.load(part / "checkpoint.pt", weights_only=True)["epoch"] == 1
    train.resume(part, progress=False)
    a, b = (torch.load(p / "checkpoint.pt", weights_only=True) for p in (whole, part))
    assert torch.equal(a["model"]["lam"], b["model"]["lam"]) and int(a["model"]["num_updates"]) == 150
    run = runs.load_run(whole)
    match = match_topics(run.model.topics(), truth)
    random = torch.distributions.Dirichlet(torch.ones(VOCAB)).sample((TOPICS,))
    assert int((match.distances < 0.1).sum()) >= 2 and match.distance < 0.45 < match_topics(random, truth).distance
    result = evaluate.evaluate_run(whole, num_samples=20, iwae_samples=())  # the test split, NPMI on the stream's head
    assert result["num_points"] == 50 and -1 <= result["metrics"]["npmi"] <= 1


@pytest.mark.e2e
@pytest.mark.timeout(DDP_TIMEOUT)
def test_two_processes_take_the_step_of_one(tmp_path):
    """Each of 2 processes runs the local step on its half of every minibatch of 40 streamed documents and the
    statistics are summed before the global step: after 2 epochs λ is one process's to float rounding."""
    directory, _ = _corpus(tmp_path / "corpus", 200)
    one = train.train(_config(directory, stream=True), tmp_path / "one", progress=False)
    two = train.train(_config(directory, stream=True), tmp_path / "two", nproc=2, progress=False)
    a, b = (torch.load(p / "checkpoint.pt", weights_only=True)["model"] for p in (one, two))
    torch.testing.assert_close(b["lam"], a["lam"], rtol=1e-10, atol=0)
    assert int(a["num_updates"]) == int(b["num_updates"]) == 10


@pytest.mark.e2e
def test_lda_trains_and_evaluates_from_the_cli_with_bounds_in_order(tmp_path, capsys):
    """``elbo train --topic-model lda`` in memory, then ``elbo evaluate``: IWAE-K's perplexity at most the ELBO's,
    NPMI and the topics in the JSON; ``elbo report`` with the topic table and figure; a stream for a neural model
    and an IWAE objective for LDA are refused in one line."""
    directory, _ = _corpus(tmp_path / "corpus", 300)
    run = tmp_path / "run"
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(directory), "--topic-model", "lda", "--topics",
                     str(TOPICS), "--kappa", "0.8", "--epochs", "2", "--batch-size", "50", "--out", str(run),
                     "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["model"] == "lda" and config["model"]["total_documents"] == 300
    assert config["model"]["kappa"] == 0.8
    assert cli.main(["evaluate", str(run), "--k", "50", "--iwae-k", "--quiet"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["log_likelihood"]["num_samples"] == 50
    metrics = result["metrics"]
    assert metrics["perplexity_corpus_iwae"] <= metrics["perplexity_corpus_elbo"]
    assert len(result["details"]["topics"]) == TOPICS and -1 <= metrics["npmi"] <= 1
    assert cli.main(["report", str(run), "--quiet"]) == 0
    assert "<h2>Topics</h2>" in (run / "report.html").read_text() and (run / "figures" / "topic_words.png").is_file()
    capsys.readouterr()
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(directory), "--stream", "--topics", "4",
                     "--epochs", "1", "--out", str(tmp_path / "neural"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "conjugate updates (LDA)" in error and "\n" not in error and not (tmp_path / "neural").exists()
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(directory), "--topic-model", "lda", "--objective",
                     "iwae", "--k", "5", "--epochs", "1", "--out", str(tmp_path / "iwae"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "maximise the ELBO" in error and "--objective" in error and not (tmp_path / "iwae").exists()
