"""Topic proportions of new documents (``elbo.models.topics.infer``, ``elbo infer`` on a topic run): exact for a
Dirichlet q, Monte Carlo within its standard error for a Gaussian one, the documents read through the run's
vocabulary, written as .npz or .csv."""

import csv
import json
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Dirichlet, Independent, Normal

from elbo import cli
from elbo.models.topics.infer import document_topics, read_documents
from helpers import NUM_SE
from test_topics_cli import TOPIC_WORDS, _write_text_corpus


class _Fixed(nn.Module):
    """A guide that returns ``q`` whatever the documents."""

    def __init__(self, q):
        super().__init__()
        self.q, self.weight = q, nn.Parameter(torch.zeros(()))

    def guide(self, x):
        return self.q


def test_a_dirichlet_q_gives_its_exact_mean_and_sd():
    q = Dirichlet(torch.tensor([[0.5, 2.0, 3.0], [1.0, 1.0, 8.0]]))
    mean, sd = document_topics(_Fixed(q), torch.zeros(2, 4))
    torch.testing.assert_close(mean, q.mean)
    torch.testing.assert_close(sd, q.variance.sqrt())


def test_a_gaussian_q_gives_the_mean_of_softmax_z_within_its_standard_error():
    q = Independent(Normal(torch.tensor([[0.0, 1.0, -1.0]]), torch.tensor([[0.5, 1.0, 2.0]])), 1)
    samples = 4000
    mean, sd = document_topics(_Fixed(q), torch.zeros(1, 4), num_samples=samples,
                               generator=torch.Generator().manual_seed(1))
    reference = torch.softmax(q.sample((400_000,)), -1)  # the truth, to far more digits than the test needs
    # NUM_SE standard errors of a mean of 4000 draws: a false failure has probability 6.8e-6 per coordinate
    assert ((mean - reference.mean(0)).abs() < NUM_SE * reference.std(0) / samples ** 0.5).all()
    assert ((sd - reference.std(0)).abs() < 0.05 * reference.std(0)).all()


def test_plain_text_is_read_through_the_vocabulary_with_its_lines(tmp_path):
    (tmp_path / "new.txt").write_text("Goal goal TEAM unknown\n\nprofit\nnothing known\n")
    with pytest.warns(UserWarning, match="1 of 3 documents have no word of the run's vocabulary of 3"):
        counts, lines = read_documents(tmp_path / "new.txt", ("goal", "profit", "team"))
    assert counts.tolist() == [[2, 0, 1], [0, 1, 0], [0, 0, 0]] and lines.tolist() == [1, 3, 4]
    (tmp_path / "new.feat").write_text("1 1:2 3:1\n2 2:4\n")
    counts, lines = read_documents(tmp_path / "new.feat", ("goal", "profit", "team"))
    assert counts.tolist() == [[2, 0, 1], [0, 4, 0]] and lines.tolist() == [1, 2]


@pytest.mark.e2e
def test_infer_gives_new_documents_the_topic_of_their_words(tmp_path, capsys):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    _write_text_corpus(corpus, documents=200)
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(corpus), "--min-df", "1", "--max-df", "0.9",
                     "--topics", "2", "--batch-size", "20", "--epochs", "40", "--lr", "0.01", "--out", str(run),
                     "--quiet"]) == 0
    sport, money = " ".join(TOPIC_WORDS[0]), " ".join(TOPIC_WORDS[1])
    (tmp_path / "new.txt").write_text(f"{sport} {sport}\n{money}\n{sport}\n")
    assert cli.main(["infer", str(run), "--data", str(tmp_path / "new.txt"), "--out", str(tmp_path / "t.npz")]) == 0
    with np.load(tmp_path / "t.npz") as result:
        theta, sd = result["proportions"], result["proportions_sd"]
        assert theta.shape == sd.shape == (3, 2) and np.allclose(theta.sum(-1), 1) and (sd > 0).all()
        assert result["topic_words"].shape == (2, 12) and list(result["length"]) == [12, 6, 6]
        sport_topic = int(theta[0].argmax())
        assert theta[2].argmax() == sport_topic != theta[1].argmax()  # each new document finds its own topic
        assert set(result["top_words"][sport_topic][:6]) == set(TOPIC_WORDS[0])
    assert cli.main(["infer", str(run), "--data", str(tmp_path / "new.txt"), "--out", str(tmp_path / "t.csv")]) == 0
    rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert rows[0] == ["line", "length", "topic_0", "topic_1", "sd_topic_0", "sd_topic_1"] and len(rows) == 4
    np.testing.assert_allclose([[float(v) for v in row[2:4]] for row in rows[1:]], theta, rtol=1e-5)
    capsys.readouterr()
    assert cli.main(["infer", str(run), "--data", str(tmp_path / "new.txt"), "--out", str(tmp_path / "t.csv")]) == 2
    assert "t.csv exists already: pass --force to replace it" in capsys.readouterr().err


@pytest.mark.e2e
def test_infer_refuses_what_a_run_does_not_read(tmp_path, capsys):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    _write_text_corpus(corpus)
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(corpus), "--min-df", "1", "--topic-model", "lda",
                     "--topics", "2", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    (tmp_path / "new.txt").write_text("goal team\n")
    capsys.readouterr()
    assert cli.main(["infer", str(run), "--data", str(tmp_path / "new.txt"), "--out", str(tmp_path / "t.npz"),
                     "--samples", "10"]) == 2
    assert "--samples: the lda model's q is a Dirichlet" in capsys.readouterr().err
    assert cli.main(["infer", str(run), "--data", str(tmp_path / "new.txt"), "--out", str(tmp_path / "t.txt")]) == 2
    assert "--out must end in .npz or .csv" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["model"]["model"] == "lda"


@pytest.mark.e2e
def test_evaluate_prints_the_topics_with_their_coherence(tmp_path, capsys):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    _write_text_corpus(corpus)
    assert cli.main(["train", "--data", "corpus", "--data-dir", str(corpus), "--min-df", "1", "--topics", "2",
                     "--epochs", "2", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--k", "5", "--iwae-k", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("topics, best NPMI first (NPMI of the top 10 words in the training documents):")
    topics = json.loads((run / "evaluation.json").read_text())["details"]["topics"]
    best = sorted(range(2), key=lambda k: -topics[k]["npmi"])
    assert lines[start + 1:start + 3] == [f"{k:>5} {topics[k]['npmi']:>7.3f}  {' '.join(topics[k]['words'])}"
                                          for k in best]


@pytest.mark.e2e
def test_a_topic_run_s_report_fits_its_model(tmp_path, capsys):
    """LDA's report: no ELBO (K, estimator) header, no lr, no settings of the neural models or of a gradient step,
    no surgery or gradient-SNR advice; ProdLDA's lists no LDA setting; a run without validation promises none."""
    corpus = tmp_path / "corpus"
    _write_text_corpus(corpus)
    documents = {}
    for model in ("lda", "prodlda"):
        run = tmp_path / model
        assert cli.main(["train", "--data", "corpus", "--data-dir", str(corpus), "--min-df", "1", "--topics", "2",
                         "--topic-model", model, "--epochs", "1", "--out", str(run)]) == 0
        progress = capsys.readouterr()
        assert "epoch 1/1" in progress.out + progress.err
        assert ("  lr " in progress.out + progress.err) == (model != "lda")  # SVI has no learning rate
        assert cli.main(["report", str(run), "--compute", "--quiet"]) == 0
        documents[model] = (run / "report.html").read_text()
    lda, prodlda = documents["lda"], documents["prodlda"]
    assert "The ELBO by LDA&#x27;s closed-form steps on corpus" in lda and "reparam" not in lda
    for setting in ("<td>lr</td>", "<td>schedule</td>", "model.hidden_dims", "model.dropout", "ELBO surgery",
                    "elbo diagnose"):
        assert setting not in lda, setting
    for setting in ("model.tau0", "model.kappa", "model.eta", "model.local_iterations"):
        assert setting not in prodlda and setting in lda, setting
    assert "model.hidden_dims" in prodlda and "<td>lr</td>" in prodlda
    assert "Training bound per epoch (no validation set" in prodlda and "validation bound" not in prodlda
    assert not any(len(number) > 12 for number in re.findall(r">(-?[\d.]+)<", prodlda))  # 6 digits, not 16
