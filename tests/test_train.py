"""Training: the schedule, the run directory, exact resume (also after SIGKILL), and stopping on NaN."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from elbo import bounds, runs, train
from elbo.models.images.config import VAEConfig
from elbo.models.images.model import make_vae
from helpers import trust, write_frey

pytestmark = pytest.mark.e2e

TINY = VAEConfig(latent_dims=(4,), hidden_dims=((16,),))


def _config(**changes):
    return train.TrainConfig(**{"data": "digits", "model": TINY, "epochs": 3, "batch_size": 100, **changes})


def _parameters(path):
    return torch.load(path / "checkpoint.pt", weights_only=True)["model"]


def _assert_same_parameters(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def test_iwae_schedule_is_3_to_the_i_epochs_at_lr_times_10_to_the_minus_i_over_7():
    config = _config(schedule="iwae", lr=1e-3)
    rates = [train.learning_rate(config, epoch) for epoch in range(train.IWAE_SCHEDULE_EPOCHS + 5)]
    stages = [round(-7 * math.log10(rate / 1e-3)) for rate in rates]
    assert train.IWAE_SCHEDULE_EPOCHS == 3280
    assert [stages.count(i) for i in range(8)] == [1, 3, 9, 27, 81, 243, 729, 2187 + 5]
    assert stages == sorted(stages)
    assert rates[4] == pytest.approx(1e-3 * 10 ** (-2 / 7), rel=1e-12)
    assert train.learning_rate(_config(lr=0.01), 1000) == 0.01


def test_cosine_schedule_starts_at_lr_halves_midway_and_ends_near_zero():
    config = _config(schedule="cosine", lr=1e-3, epochs=100)
    rates = [train.learning_rate(config, epoch) for epoch in range(100)]
    assert rates[0] == 1e-3 and rates[50] == pytest.approx(5e-4, rel=1e-12)
    assert rates[99] == pytest.approx(1e-3 * (1 - math.cos(math.pi / 100)) / 2, rel=1e-12) and rates[99] > 0
    assert rates == sorted(rates, reverse=True)


def test_config_is_validated_and_round_trips_through_json():
    with pytest.raises(ValueError, match="objective must be one of .* got 'gan'"):
        _config(objective="gan")
    with pytest.raises(ValueError, match="estimator must be one of 'reparam' for objective 'elbo', got 'dreg'"):
        _config(estimator="dreg")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        _config(batch_size=0)
    with pytest.raises(ValueError, match="device must name a torch device"):
        _config(device="gpu!")
    config = _config(objective="iwae", num_samples=5, estimator="dreg")
    assert train.TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_run_directory_holds_config_metrics_and_a_weights_only_checkpoint(tmp_path):
    config = _config(epochs=6, lr=1e-2)
    train.train(config, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    saved = json.loads((run / "config.json").read_text())
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert train.TrainConfig.from_dict(saved) == train.TrainConfig.from_dict(checkpoint["config"])
    assert checkpoint["epoch"] == 6
    assert saved["model"]["image_shape"] == [8, 8] and saved["model"]["likelihood"] == "bernoulli"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == list(range(1, 7))
    for m in metrics:
        assert {"lr", "elbo", "train_bound", "val_bound", "val_elbo", "examples_per_sec", "seconds"} <= m.keys()
        assert m["val_bound"] == m["val_elbo"] and m["elbo"] == m["train_bound"] and m["examples_per_sec"] > 0
    assert metrics[-1]["val_elbo"] > metrics[0]["val_elbo"] + 1  # training raises the bound
    loaded = runs.load_run(run)
    assert loaded.epoch == 6 and loaded.config == train.TrainConfig.from_dict(saved) and not loaded.model.training
    _assert_same_parameters(loaded.model.state_dict(), checkpoint["model"])
    assert loaded.data.name == "digits" and len(loaded.metrics) == 6


@pytest.mark.parametrize("changes", [dict(objective="iwae", num_samples=3, estimator="dreg"),
                                     dict(model=VAEConfig(latent_dims=(3, 2), hidden_dims=((8,), (8,)))),
                                     dict(model=VAEConfig(latent_dims=(4,), network="conv", activation="relu"))],
                         ids=["iwae-dreg", "two-layer-vae", "conv-vae"])
def test_resume_reaches_the_parameters_of_an_uninterrupted_run(tmp_path, changes):
    """Stopped after one epoch (time_limit 0) then resumed, a run ends bit for bit where an uninterrupted one
    does: the learning rate, the samples z, the shuffling and the binarization all continue where they were."""
    config = _config(**changes)
    train.train(config, tmp_path / "whole", progress=False)
    train.train(config, tmp_path / "parts", progress=False, time_limit=0)
    assert torch.load(tmp_path / "parts" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    train.resume(tmp_path / "parts", progress=False)
    _assert_same_parameters(_parameters(tmp_path / "parts"), _parameters(tmp_path / "whole"))
    metrics = [json.loads(line) for line in (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]


def _elbo_train(*args):
    command = [sys.executable, "-m", "elbo", "train", "--data", "digits", "--latent", "4", "--hidden", "32",
               "--epochs", "12", "--quiet", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    whole = _elbo_train("--out", str(out))
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    return out


@pytest.mark.parametrize("signal_", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_resume_after_a_kill_or_ctrl_c_matches_an_uninterrupted_run(tmp_path, uninterrupted, signal_):
    """`elbo train` killed with SIGKILL, or interrupted by SIGINT (Ctrl-C: exit 130 and a one-line hint), in its
    third epoch or later, then `elbo train --resume`, ends with the same parameters, bit for bit, as the same command
    never interrupted (each in its own process, CPU, float32)."""
    killed = _elbo_train("--out", str(tmp_path / "killed"))
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):  # so epoch 1 is checkpointed
        assert killed.poll() is None and time.monotonic() < deadline, killed.stderr.read() if killed.stderr else ""
        time.sleep(0.01)
    os.kill(killed.pid, signal_)
    _, stderr = killed.communicate(timeout=60)
    epoch = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= epoch < 12, f"the run was not interrupted mid-way (checkpoint of epoch {epoch})"
    if signal_ == signal.SIGKILL:
        assert killed.returncode == -signal.SIGKILL
    else:
        assert killed.returncode == 130
        assert stderr.splitlines() == [f"elbo train: interrupted; continue with: elbo train --resume "
                                       f"{tmp_path / 'killed'}"]
        # an epoch's line is written just before its checkpoint, and `--resume` drops a line the checkpoint lacks
        assert epoch <= len(metrics.read_text().splitlines()) <= epoch + 1
    resumed = subprocess.run([sys.executable, "-m", "elbo", "train", "--resume", str(tmp_path / "killed"),
                              "--quiet"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_parameters(_parameters(tmp_path / "killed"), _parameters(uninterrupted))
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 13))


def test_a_nan_bound_stops_training_and_keeps_the_last_finite_checkpoint(tmp_path, monkeypatch):
    calls = {"steps": 0}
    bound = train.training_bound

    def breaks_in_epoch_2(model, x, config, **options):  # 14 steps per epoch (1350 images, batches of 100)
        calls["steps"] += 1
        value, elbo = bound(model, x, config, **options)
        return (value * math.nan, elbo) if calls["steps"] > 20 else (value, elbo)

    monkeypatch.setattr(train, "training_bound", breaks_in_epoch_2)
    with pytest.raises(train.TrainingDiverged, match=r"became nan in epoch 2; stopped, .*keeps epoch 1") as error:
        train.train(_config(epochs=4), tmp_path / "run", progress=False)
    assert "\n" not in str(error.value)
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and all(torch.isfinite(p).all() for p in checkpoint["model"].values())
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def test_an_existing_run_is_not_overwritten_without_force(tmp_path):
    train.train(_config(epochs=1), tmp_path / "run", progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(ValueError, match=r"already holds a run .* resume\(.* force=True"):
        train.train(_config(epochs=2), tmp_path / "run", progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    for name in ("surgery.json", "diagnostics.json", "report.html", "notes.txt"):  # measurements of the old model
        (tmp_path / "run" / name).write_text("{}")
    train.train(_config(epochs=2), tmp_path / "run", progress=False, force=True)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.name != runs.LOCK_FILE) == [
        "checkpoint.pt", "config.json", "metrics.jsonl", "notes.txt"]  # a file not of the run stays


def test_unreadable_runs_are_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="is not a run directory"):
        runs.load_run(tmp_path / "nothing")
    train.train(_config(epochs=1), tmp_path / "run", progress=False)
    path = tmp_path / "run" / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:200])
    for call in (runs.load_run, train.resume):
        with pytest.raises(ValueError, match="checkpoint.pt is corrupt or not a checkpoint") as error:
            call(tmp_path / "run")
        assert "\n" not in str(error.value)


def test_gaussian_decoder_learns_its_scale_on_faces(tmp_path, monkeypatch):
    """Frey-like faces (generated) train with the Gaussian likelihood: σ per pixel is learned."""
    ff = np.random.default_rng(0).integers(0, 256, (560, 400), np.uint8)
    trust(monkeypatch, write_frey(tmp_path / "data" / "frey_faces" / "frey_rawface.mat", ff))
    config = _config(data="frey", data_dir=str(tmp_path / "data"), epochs=2, batch_size=50)
    train.train(config, tmp_path / "run", progress=False)
    run = runs.load_run(tmp_path / "run")
    assert run.config.model.likelihood == "gaussian"
    assert run.model.head.log_scale.shape == (560,)
    start = torch.as_tensor(ff.T / 255.0)[:-40].std(0).clamp_min(1e-2).log()  # σ starts at the data's spread
    assert not torch.allclose(run.model.head.log_scale.double(), start[:len(start)].double(), atol=1e-4)


def test_without_validation_images_the_metrics_have_no_validation_bound(tmp_path):
    train.train(_config(epochs=1, val_size=0), tmp_path / "run", progress=False)
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "val_bound" not in record and math.isfinite(record["train_bound"])
    assert len(runs.load_run(tmp_path / "run").data.train) == 1500


@pytest.mark.parametrize("changes", [dict(objective="elbo"), dict(objective="iwae", num_samples=5, estimator="dreg")],
                         ids=["vae", "iwae-dreg"])
def test_the_compiled_objective_has_the_eager_value_and_gradient(changes):
    """torch.compile fuses the element-wise work (tanh, the Bernoulli log-likelihood, its sum over pixels) but
    computes the same bound and gradient: with the same noise, both agree to float64 rounding."""
    config = _config(**changes)
    model = make_vae(dataclasses.replace(TINY, image_shape=(4, 4), likelihood="bernoulli"))
    x = torch.bernoulli(torch.rand(6, 16))
    results = []
    for compile_ in (False, True):
        objective = train.make_objective(model, dataclasses.replace(config, compile=compile_))
        torch.manual_seed(1)
        bound, elbo = objective(x)
        gradients = torch.autograd.grad(bound.mean(), list(model.parameters()))
        results.append((torch.stack([bound.detach(), elbo]), gradients))
    (eager, eager_gradients), (compiled, compiled_gradients) = results
    torch.testing.assert_close(compiled, eager, rtol=1e-12, atol=1e-12)
    for got, expected in zip(compiled_gradients, eager_gradients, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("estimator", ["reparam", "dreg"])
def test_the_training_elbo_is_the_mean_of_the_log_weights_the_iwae_bound_reduces(estimator):
    """For the IWAE objective the step's second output is ``mean_k log w_k`` of the very draws whose
    ``log mean_k w_k`` is the bound (so it is below the bound, by Jensen, image by image), without a gradient."""
    config = _config(objective="iwae", num_samples=7, estimator=estimator)
    model = make_vae(dataclasses.replace(TINY, image_shape=(4, 4), likelihood="bernoulli"))
    x = torch.bernoulli(torch.rand(6, 16))
    torch.manual_seed(3)
    bound, elbo = train.training_bound(model, x, config)
    torch.manual_seed(3)
    log_w, _ = bounds.log_weights(model, model.guide, x, 7)
    torch.testing.assert_close(elbo, log_w.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bound, torch.logsumexp(log_w, 0) - math.log(7), rtol=1e-12, atol=1e-12)
    assert not elbo.requires_grad and bound.requires_grad and (elbo < bound).all()


def test_an_iwae_run_logs_the_training_elbo_below_the_training_bound(tmp_path):
    train.train(_config(objective="iwae", num_samples=5, epochs=2), tmp_path / "run", progress=False)
    for m in (json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()):
        assert math.isfinite(m["elbo"]) and m["elbo"] < m["train_bound"]
        assert m["val_elbo"] < m["val_bound"]
