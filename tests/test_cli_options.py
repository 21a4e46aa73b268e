"""``elbo train``'s options and files, each honoured or refused in one line (issue 25): the thread default of the
commands that train and measure, options of another kind or data set, a data directory no data set reads."""

import pytest
import torch

from elbo import cli
from helpers import elbo_in_process

pytestmark = pytest.mark.e2e

TINY = ["--data", "digits", "--latent", "2", "--hidden", "8", "--batch-size", "500", "--epochs", "1", "--quiet"]


@pytest.fixture
def thread_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    return calls


def test_train_and_evaluate_default_to_one_thread(tmp_path, thread_calls):
    """On a shared machine torch's default (every core) slows a step many times: one thread unless told."""
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--out", str(run)]) == 0
    assert cli.main(["evaluate", str(run), "--k", "2", "--iwae-k", "--max-points", "5", "--quiet"]) == 0
    assert thread_calls == [1, 1]
    assert cli.main(["evaluate", str(run), "--k", "2", "--iwae-k", "--max-points", "5", "--quiet",
                     "--threads", "3"]) == 0
    assert thread_calls == [1, 1, 3]
    for command in ("train", "evaluate", "report", "infer"):
        assert "1 by default" in " ".join(elbo_in_process(command, "--help").stdout.split())
