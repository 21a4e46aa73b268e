"""The topics kind from the command line, on the real corpora in ../shared/data (skipped where they are absent)."""

import json
import math

import pytest

from elbo import cli
from helpers import NUM_SE, SHARED_DATA, fresh_process

pytestmark = pytest.mark.e2e

real_data = pytest.mark.skipif(not (SHARED_DATA / "20news_avitm").is_dir() or not (SHARED_DATA / "bbc_news").is_dir(),
                               reason="the shared corpora ../shared/data/{20news_avitm,bbc_news} are absent")


@real_data
def test_prodlda_on_20news_trains_evaluates_and_reports(tmp_path, capsys):
    run = tmp_path / "prodlda"
    with fresh_process():  # float32, as the commands run for a user
        assert cli.main(["train", "--data", "20news", "--data-dir", str(SHARED_DATA), "--topics", "20",
                         "--batch-size", "200", "--lr", "0.002", "--epochs", "2", "--out", str(run), "--quiet"]) == 0
        config = json.loads((run / "config.json").read_text())
        assert config["model"]["kind"] == "topics" and config["model"]["vocab_size"] == 1995
        assert cli.main(["evaluate", str(run), "--k", "20", "--iwae-k", "5", "--max-points", "300", "--quiet"]) == 0
    assert "nats per document" in capsys.readouterr().out
    result = json.loads((run / "evaluation.json").read_text())
    metrics = result["metrics"]
    # IWAE-20 ≥ ELBO document by document in expectation, so its perplexity is the smaller (tighter) upper bound
    for formula in ("per_document", "corpus"):
        gap = metrics[f"perplexity_{formula}_elbo"] - metrics[f"perplexity_{formula}_iwae"]
        assert gap > 0, (formula, gap)
    assert 0 < metrics["diversity"] <= 1 and -1 <= metrics["npmi"] <= 1
    topics = result["details"]["topics"]
    assert len(topics) == 20 and all(len(t["words"]) == 10 for t in topics)
    assert cli.main(["report", str(run), "--quiet"]) == 0
    document = (run / "report.html").read_text()
    assert "<h2>Topics</h2>" in document and "nats per document" in document and 'alt="topic_words"' in document
    assert (run / "figures" / "topic_words.png").is_file()


@real_data
def test_nvdm_on_bbc_gives_topic_proportions_a_classifier_can_use(tmp_path):
    run = tmp_path / "nvdm"
    with fresh_process():  # float32, as the commands run for a user
        assert cli.main(["train", "--data", "bbc", "--data-dir", str(SHARED_DATA), "--topic-model", "nvdm",
                         "--topics", "10", "--batch-size", "100", "--lr", "0.002", "--epochs", "30", "--out",
                         str(run), "--quiet"]) == 0
        assert cli.main(["evaluate", str(run), "--k", "5", "--iwae-k", "2", "--quiet"]) == 0
    metrics = json.loads((run / "evaluation.json").read_text())["metrics"]
    chance, test_size = 0.2, 335  # five classes; the accuracy of guessing has sd sqrt(0.2 · 0.8 / 335)
    assert metrics["accuracy"] > chance + NUM_SE * (chance * (1 - chance) / test_size) ** 0.5, metrics["accuracy"]


def test_a_missing_corpus_is_one_line_and_makes_no_run(tmp_path, capsys):
    capsys.readouterr()
    code = cli.main(["train", "--data", "bbc", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"),
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "vocabulary.txt" in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def _write_corpus(directory, *, documents=60, vocabulary=12, seed=0):
    """Two topics of six words each, ten words a document, in the LABEL idx:count format."""
    import random

    rng = random.Random(seed)
    directory.mkdir()
    (directory / "vocabulary.txt").write_text("".join(f"word{i}\n" for i in range(vocabulary)))
    lines = []
    for d in range(documents):
        topic = d % 2
        words = [rng.randrange(6) + 6 * topic for _ in range(10)]
        counts = {w: words.count(w) for w in set(words)}
        lines.append(f"{topic} " + " ".join(f"{w + 1}:{c}" for w, c in sorted(counts.items())))
    (directory / "train.feat").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("model", ["prodlda", "nvdm", "dirichlet"])
def test_a_users_own_corpus_trains_evaluates_and_reports_from_the_cli(tmp_path, capsys, model):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    _write_corpus(corpus)
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(corpus), "--topic-model", model, "--topics", "2",
                     "--batch-size", "10", "--epochs", "3", "--out", str(run), "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == "corpus" and config["model"]["vocab_size"] == 12
    assert cli.main(["evaluate", str(run), "--k", "10", "--iwae-k", "2", "--quiet"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["num_points"] == 6 and len(result["details"]["topics"]) == 2  # the last tenth is the test set
    assert cli.main(["report", str(run), "--quiet"]) == 0


@pytest.mark.parametrize("make, match", [
    (lambda d: None, "the data set 'corpus' is a directory of your own: give --data-dir"),
    (lambda d: (_write_corpus(d), (d / "vocabulary.txt").unlink()), "vocabulary.txt or vocab.new is missing"),
    (lambda d: (_write_corpus(d), (d / "train.feat").write_text("0 13:1\n" * 20)), "train.feat, line 1"),
    (lambda d: (_write_corpus(d), (d / "train.feat").write_text("0 1:1.5\n" * 20)), "train.feat, line 1"),
], ids=["no directory given", "no vocabulary", "a word past the vocabulary", "a count not an integer"])
def test_a_bad_corpus_is_one_line_and_makes_no_run(tmp_path, capsys, make, match):
    make(tmp_path / "corpus")
    given = [] if not (tmp_path / "corpus").exists() else ["--data-dir", str(tmp_path / "corpus")]
    capsys.readouterr()
    code = cli.main(["train", "--data", "corpus", *given, "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and match in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


TOPIC_WORDS = (("goal", "match", "team", "score", "league", "coach"),
               ("market", "shares", "profit", "bank", "trade", "prices"))


def _write_text_corpus(directory, *, documents=60, seed=0):
    """Two topics of six words each, ten words a document and a stop word ("the"), in plain text, one document a
    line."""
    import random

    rng = random.Random(seed)
    directory.mkdir()
    lines = [" ".join(["The"] + [rng.choice(TOPIC_WORDS[d % 2]) for _ in range(10)]) for d in range(documents)]
    (directory / "train.txt").write_text("\n".join(lines) + "\n")


def test_a_plain_text_corpus_trains_with_its_options_and_evaluates_from_the_cli(tmp_path, capsys):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    _write_text_corpus(corpus)
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(corpus), "--min-df", "1", "--max-df", "0.9",
                     "--max-features", "50", "--topics", "2", "--batch-size", "10", "--epochs", "3", "--out", str(run),
                     "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data_options"] == {"lowercase": True, "stop_words": "english", "min_df": 1, "max_df": 0.9,
                                      "max_features": 50, "stream": False}
    assert config["model"]["vocab_size"] == 12  # the twelve topic words; "the" is a stop word
    assert cli.main(["evaluate", str(run), "--k", "10", "--iwae-k", "2", "--quiet"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["num_points"] == 6  # the last tenth is the test set
    words = {word for topic in result["details"]["topics"] for word in topic["words"]}
    assert words <= set(TOPIC_WORDS[0] + TOPIC_WORDS[1])
    # the same corpus tokenised otherwise is another data set: the run's settings are refused
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run), "--min-df", "2", "--quiet"]) == 2
    assert capsys.readouterr().err == "elbo train: error: --resume continues a run with its own settings; drop " \
                                      "--min-df\n"


@pytest.mark.parametrize("make, flags, match", [
    (_write_text_corpus, ["--data", "digits", "--min-df", "1"], "--min-df: an option of --data corpus only, not of "
                                                                 "digits"),
    (_write_text_corpus, ["--data", "bbc", "--no-lowercase", "--stop-words", "none"],
     "--stop-words, --no-lowercase: options of --data corpus only, not of bbc"),
    (_write_text_corpus, ["--data", "corpus", "--min-df", "100"], "--min-df (100) is more than the 54 training "
                                                                  "documents"),
    (_write_text_corpus, ["--data", "corpus", "--max-df", "1.5"], "--max-df must be a number in (0, 1]"),
    (lambda d: (_write_text_corpus(d), (d / "train.txt").write_bytes(b"caf\xe9\n" * 20)), ["--data", "corpus"],
     "train.txt: not UTF-8 text"),
    (lambda d: (_write_text_corpus(d), (d / "train.txt").write_text("\n")), ["--data", "corpus"],
     "train.txt: no document"),
    (lambda d: (_write_text_corpus(d), (d / "train.feat").write_text("0 1:1\n")), ["--data", "corpus"],
     "holds both train.feat and train.txt"),
], ids=["an option of another data set", "options of another data set", "min-df above the documents",
        "max-df above one", "not UTF-8", "empty", "both formats"])
def test_a_bad_plain_text_corpus_or_option_is_one_line_and_makes_no_run(tmp_path, capsys, make, flags, match):
    make(tmp_path / "corpus")
    capsys.readouterr()
    code = cli.main(["train", *flags, "--data-dir", str(tmp_path / "corpus"), "--out", str(tmp_path / "run"),
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and match in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model", ["prodlda", "nvdm"])
def test_a_topic_model_trains_by_iwae_with_dreg_and_its_elbo_is_taken_apart(tmp_path, model):
    """The core's bounds and estimators apply to the topic models: IWAE-5 training with DReG, then ELBO surgery of
    the Gaussian latent: the mean KL splits into the index-code mutual information and the marginal KL, within
    NUM_SE standard errors of the Monte Carlo estimates."""
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    _write_corpus(corpus)
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(corpus), "--topic-model", model, "--topics", "2",
                     "--objective", "iwae", "--k", "5", "--estimator", "dreg", "--batch-size", "10", "--epochs", "2",
                     "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["estimator"] == "dreg"
    assert cli.main(["surgery", str(run), "--dimension-samples", "50", "--quiet"]) == 0
    s = json.loads((run / "surgery.json").read_text())
    parts = s["index_code_mi"]["mean"] + s["marginal_kl"]["mean"]
    error = math.hypot(s["kl"]["stderr"], s["index_code_mi"]["stderr"], s["marginal_kl"]["stderr"])
    assert abs(s["kl"]["mean"] - parts) < NUM_SE * error, (s["kl"], parts, error)
