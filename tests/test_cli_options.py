"""``elbo train``'s options and files, each honoured or refused in one line (issue 25): the thread default of the
commands that train and measure, options of another kind or data set, a data directory no data set reads."""

import json

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


def _train_args(*extra):
    return cli.build_parser().parse_args(["train", "--out", "unused", *extra])


# a value for every option of `elbo train` that takes one and has no choices, other than its default
VALUES = {"data_dir": "/nowhere", "val_size": "7", "min_df": "3", "max_df": "0.3", "max_features": "100",
          "bin_size": "0.01", "held_out": "2", "num_samples": "3", "latent": "4", "hidden": "16", "fixed_scale": "0.5",
          "num_topics": "7", "encoder_hidden": "17", "dropout": "0.3", "alpha": "0.3", "eta": "0.3", "tau0": "3",
          "kappa": "0.9", "local_iterations": "7", "timescale": "0.3", "gru_size": "9", "epochs": "3", "lr": "0.01",
          "batch_size": "7", "seed": "5", "device": "cpu:0"}
# the options of the command, not of the run (config.json): where it goes and how this process runs
NOT_SETTINGS = {"help", "out", "force", "resume", "quiet", "threads", "nproc"}
SETUPS = [("digits",), ("20news", "--topic-model", "prodlda"), ("20news", "--topic-model", "nvdm"),
          ("20news", "--topic-model", "dirichlet"), ("20news", "--topic-model", "lda"), ("lorenz",)]


def _given(action) -> list[list[str]]:
    """The ways of giving ``action`` a value other than nothing: each choice, the flag, or ``VALUES``'."""
    flag = action.option_strings[0]
    if action.choices is not None:
        return [[flag, str(choice)] for choice in action.choices]
    return [[flag]] if action.nargs == 0 else [[flag, VALUES[action.dest]]]


@pytest.mark.parametrize("setup", SETUPS, ids=" ".join)
def test_every_option_of_train_changes_the_config_or_is_refused(setup):
    """Issue 25: with each kind (and each topic model), every option of ``elbo train`` changes config.json or is
    refused in one line; none is dropped without a word."""
    from elbo.cli.train import _config
    from elbo.errors import InputError

    data, *model = setup
    base = _config(_train_args("--data", data, *model)).to_dict()
    parser = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    actions = [action for action in parser._actions if action.dest not in NOT_SETTINGS]
    assert {action.dest for action in parser._actions} - {action.dest for action in actions} == NOT_SETTINGS
    for action in actions:
        for given in _given(action):
            if given[0] == "--data" or (given[0] == "--topic-model" and model):
                continue  # the setup's own
            try:
                config = _config(_train_args("--data", data, *model, *given)).to_dict()
            except (cli.UsageError, InputError):
                continue  # refused
            default = action.choices is not None and given[1] in map(str, _leaves(base))
            assert config != base or default, f"{' '.join(given)} is dropped with --data {data} {' '.join(model)}"


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def test_options_of_another_kind_are_refused_in_one_line():
    for extra, line in [
            (["--data", "20news", "--latent", "4"], "--latent: not an option of the topics kind"),
            (["--data", "20news", "--hidden", "32,32"], "--hidden: an option of the images kind, not of the topics"),
            (["--data", "digits", "--topics", "5"], "--topics: an option of the topics kind, not of the images"),
            (["--data", "20news", "--eta", "0.1"], "--eta: an option of --topic-model lda only, not of prodlda"),
            (["--data", "lorenz", "--latent", "2", "3"], "--latent: a spike model has one latent trajectory"),
            (["--data-dir", "pngs"], "--data-dir without --data: say which data set is in it"),
            (["--data", "digits", "--model", "topics"], "--model topics: --data digits is of kind images; the data "
                                                        "sets of kind topics are 20news, bbc, corpus")]:
        result = elbo_in_process("train", *extra, "--out", "unused")
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"elbo train: error: {line}"), result.stderr


def test_spike_models_take_the_number_of_latents(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", "--data", "lorenz", "--latent", "2", "--epochs", "1", "--quiet", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["latent_dim"] == 2


def test_a_folder_given_to_a_data_set_that_reads_none_is_refused(tmp_path):
    result = elbo_in_process("train", "--data", "digits", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.startswith("elbo train: error: --data-dir: data set 'digits' reads no files"), result.stderr
    assert not (tmp_path / "r").exists()


def test_settings_a_model_does_not_use_are_refused_at_training(tmp_path):
    """Refused where only the data (or the model built) shows that they would be ignored."""
    result = elbo_in_process("train", *TINY, "--gaussian-scale", "shared", "--out", str(tmp_path / "a"))
    assert result.returncode == 2 and "gaussian_scale" not in result.stderr, result.stderr
    assert "--gaussian-scale: settings of a gaussian likelihood, and this run's is bernoulli" in result.stderr


def test_a_data_directory_for_a_run_whose_data_set_reads_none_is_refused(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--out", str(run)]) == 0
    for command in ("evaluate", "report", "diagnose"):
        result = elbo_in_process(command, str(run), "--data-dir", str(tmp_path), "--quiet")
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"elbo {command}: error: --data-dir: the run's data set, digits, reads no files; " \
                                f"leave it out\n"


def test_threads_are_each_data_parallel_process_s(tmp_path, monkeypatch):
    from elbo import distributed

    class Launched(Exception):
        pass

    def launch(fn, nproc, *args, threads=None, **kwargs):
        raise Launched(nproc, threads)

    monkeypatch.setattr(distributed, "launch", launch)
    with pytest.raises(Launched) as launched:
        cli.main(["train", *TINY, "--nproc", "2", "--threads", "3", "--out", str(tmp_path / "run")])
    assert launched.value.args == (2, 3)


def test_infer_refuses_a_run_of_another_kind(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--out", str(run)]) == 0
    result = elbo_in_process("infer", str(run), "--data", "x.npz", "--out", str(tmp_path / "o.npz"))
    assert result.returncode == 2
    assert result.stderr == f"elbo infer: error: {run} is a run of kind images: elbo infer reads runs of kind spikes " \
                            f"or topics\n"
