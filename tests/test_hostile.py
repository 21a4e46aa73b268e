"""The hostile user (issue 13): bad input and faults across every command of a run directory. Each case asserts the
exit code, one line on stderr without a traceback, and that every file of the run is unchanged (hashes before and
after). The long fault trials (kill -9 at random moments) are marked slow."""

import hashlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from elbo import cli, runs
from helpers import SHARED_DATA, elbo_in_process

pytestmark = pytest.mark.e2e

TINY = ["--data", "digits", "--latent", "3", "--hidden", "16", "--batch-size", "100", "--quiet"]
MEASURES = (["evaluate", "--k", "20", "--iwae-k", "5", "--max-points", "20"], ["surgery", "--max-points", "40"],
            ["diagnose", "--draws", "3", "--k", "1,2", "--batch-size", "10"], ["report"])


def _hashes(path: Path) -> dict:
    """Every file below ``path`` but the lock file (which holds the pid of its last holder) and its hash."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != runs.LOCK_FILE}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "run"
    assert cli.main(["train", *TINY, "--epochs", "2", "--out", str(path)]) == 0
    assert cli.main(["evaluate", str(path), *MEASURES[0][1:], "--quiet"]) == 0
    return path


@pytest.fixture
def run(base_run, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(base_run, path)
    return path


def _refused(capsys, argv, match, *, code=2, unchanged=None):
    """``elbo ARGV`` exits with ``code`` and one line on stderr holding ``match``, no traceback; the files of
    ``unchanged`` (a directory) are as they were."""
    before = _hashes(unchanged) if unchanged is not None else None
    capsys.readouterr()
    try:
        returned = cli.main(argv)
    except SystemExit as exit_:  # argparse's refusals
        returned = exit_.code
    err = capsys.readouterr().err
    assert returned == code and len(err.splitlines()) == 1 and "Traceback" not in err and match in err, err
    if unchanged is not None:
        assert _hashes(unchanged) == before


# --- checkpoints: untrusted input, checked tensor by tensor -----------------------------------------------------

def _edit_checkpoint(path: Path, edit) -> None:
    checkpoint = torch.load(path / "checkpoint.pt", weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, path / "checkpoint.pt")


def _first_state(checkpoint):
    return next(iter(checkpoint["optimizer"]["state"].values()))


def _first_weight(checkpoint):
    return next(iter(checkpoint["model"]))


OPTIMIZER_EDITS = {
    "exp_avg of another shape": (lambda c: _first_state(c).update(exp_avg=torch.zeros(3)), "is not a finite"),
    "exp_avg_sq NaN": (lambda c: _first_state(c)["exp_avg_sq"].fill_(float("nan")), "is not a finite"),
    "step an int": (lambda c: _first_state(c).update(step=2), "'step' of parameter 0 is not a finite ()"),
    "a parameter group too many": (lambda c: c["optimizer"]["param_groups"].append(
        dict(c["optimizer"]["param_groups"][0])), "parameter groups are not the model's"),
    "state of parameter 999": (lambda c: c["optimizer"]["state"].update({999: _first_state(c)}),
                               "names parameter 999"),
    "state a list": (lambda c: c["optimizer"].update(state=[1, 2]), "cannot restore the optimizer"),
    "torch rng of another size": (lambda c: c["rng"].update(torch=torch.zeros(7, dtype=torch.uint8)),
                                  "cannot restore the training state"),
    "no shuffle rng": (lambda c: c["rng"].pop("shuffle"), "cannot restore the training state"),
}


@pytest.mark.parametrize("edit, match", OPTIMIZER_EDITS.values(), ids=OPTIMIZER_EDITS.keys())
def test_resume_refuses_a_checkpoint_whose_training_state_is_not_the_model_s(run, capsys, edit, match):
    _edit_checkpoint(run, edit)
    _refused(capsys, ["train", "--resume", str(run), "--quiet"], match, unchanged=run)


MODEL_EDITS = {
    "epoch -3": (lambda c: c.update(epoch=-3), "its epoch must be an integer >= 0, got -3"),
    "epoch '2'": (lambda c: c.update(epoch="2"), "its epoch must be an integer >= 0, got '2'"),
    "epoch True": (lambda c: c.update(epoch=True), "got True"),
    "epoch past the run's end": (lambda c: c.update(epoch=99), "holds epoch 99 of a run of 2 epochs"),
    "NaN weights": (lambda c: c["model"][_first_weight(c)].fill_(float("nan")), "holds NaN or infinite values"),
    "a weight of another shape": (lambda c: c["model"].update({_first_weight(c): torch.zeros(2, 2)}),
                                  "must be a"),
    "a weight of integers": (lambda c: c["model"].update({_first_weight(c): c["model"][_first_weight(c)].long()}),
                             "floating-point tensor, got"),
    "a weight missing": (lambda c: c["model"].pop(_first_weight(c)), "do not match the model's"),
    "a weight too many": (lambda c: c["model"].update(extra=torch.zeros(1)), "do not match the model's"),
    "a weight not a tensor": (lambda c: c["model"].update({_first_weight(c): [1.0]}), "tensor, got list"),
    "an unknown model kind": (lambda c: c["config"]["model"].update(kind="sound"),
                              "the run was trained on model kind 'sound', which is not registered here"),
    "an unknown setting": (lambda c: c["config"].update(colour="red"), "do not make a model"),
    "a negative learning rate": (lambda c: c["config"].update(lr=-1.0), "lr must be a finite number > 0"),
    "a seed too large": (lambda c: c["config"].update(seed=10**24), "seed must be an integer in [0, 2^63)"),
    "no config": (lambda c: c.pop("config"), "missing: config"),
}


@pytest.mark.parametrize("command", ["evaluate", "resume"])
@pytest.mark.parametrize("edit, match", MODEL_EDITS.values(), ids=MODEL_EDITS.keys())
def test_a_checkpoint_that_does_not_make_the_model_is_refused(run, capsys, edit, match, command):
    _edit_checkpoint(run, edit)
    argv = ["train", "--resume", str(run), "--quiet"] if command == "resume" else ["evaluate", str(run), "--quiet"]
    _refused(capsys, argv, match, unchanged=run)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_with_a_payload_is_refused_unread_in_one_line_of_ours(run, capsys, tmp_path):
    marker = tmp_path / "payload-ran"
    with open(run / "checkpoint.pt", "wb") as file:
        pickle.dump({"config": _Payload(marker), "epoch": 2}, file)
    for argv in (["evaluate", str(run)], ["train", "--resume", str(run)]):
        _refused(capsys, argv, "refused unread", unchanged=run)
    assert not marker.exists()
    err = capsys.readouterr().err
    assert "weights_only" not in err


@pytest.mark.parametrize("content, match", [(b"", "corrupt or not a checkpoint"),
                                            (b"PK\x03\x04garbage", "corrupt or not a checkpoint"),
                                            (None, "corrupt or not a checkpoint")],
                         ids=["empty", "a broken zip", "cut in half"])
def test_a_corrupt_checkpoint_file_is_refused(run, capsys, content, match):
    path = run / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2] if content is None else content)
    for command in MEASURES:
        _refused(capsys, [command[0], str(run), *command[1:], "--quiet"], match, unchanged=run)


# --- the run directory's other files ------------------------------------------------------------------------------

def test_a_config_json_that_contradicts_the_checkpoint_is_refused(run, capsys):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "lr": 0.5}))
    for argv in (["train", "--resume", str(run), "--quiet"], ["evaluate", str(run), "--quiet"]):
        _refused(capsys, argv, "config.json disagrees with checkpoint.pt on lr", unchanged=run)
    config["model"]["latent_dims"] = [7]
    (run / "config.json").write_text(json.dumps(config))
    _refused(capsys, ["surgery", str(run), "--quiet"], "disagrees with checkpoint.pt on model", unchanged=run)
    (run / "config.json").write_text("{not json")
    _refused(capsys, ["evaluate", str(run), "--quiet"], "config.json is not the config of a run", unchanged=run)


def test_epochs_raised_in_config_json_are_trained_on_resume(run, capsys):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 3}))
    assert cli.main(["train", "--resume", str(run), "--quiet"]) == 0
    assert [m["epoch"] for m in runs.read_metrics(run)] == [1, 2, 3]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 3


def test_a_metrics_line_cut_mid_write_is_dropped_with_one_warning(run):
    with open(run / "metrics.jsonl", "a") as metrics:
        metrics.write('{"epoch": 3, "lr": 0.001, "elb')
    result = elbo_in_process("train", "--resume", str(run), "--quiet")  # the checkpoint is at epoch 2 of 2
    assert result.returncode == 0 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("elbo train: warning: ") and "cut short" in result.stderr
    assert [m["epoch"] for m in runs.read_metrics(run)] == [1, 2]


@pytest.mark.parametrize("line, match", [("garbage\n", "not one JSON object per line (line 2"),
                                         ("[1, 2]\n", "line 3 is not an epoch's record")],
                         ids=["not JSON", "not an object"])
def test_a_bad_metrics_line_is_refused(run, capsys, line, match):
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines.insert(1 if "garbage" in line else 2, line)
    (run / "metrics.jsonl").write_text("".join(lines))
    _refused(capsys, ["evaluate", str(run), "--quiet"], match, unchanged=run)


@pytest.mark.parametrize("make, match", [(lambda p: None, "is not a run directory (no such directory)"),
                                         (lambda p: p.write_text("x"), "is not a run directory"),
                                         (lambda p: p.mkdir(), "has no checkpoint.pt"),
                                         (lambda p: (p / "checkpoint.pt").mkdir(parents=True), "has no checkpoint.pt")],
                         ids=["missing", "a file", "empty", "checkpoint a directory"])
@pytest.mark.parametrize("command", [m[0] for m in MEASURES] + ["resume"])
def test_what_is_not_a_run_directory_is_refused(tmp_path, capsys, make, match, command):
    path = tmp_path / "nowhere"
    make(path)
    argv = ["train", "--resume", str(path)] if command == "resume" else [command, str(path)]
    _refused(capsys, argv, match)


# --- paths and the operating system -------------------------------------------------------------------------------

def test_an_out_that_is_a_file_or_under_one_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    _refused(capsys, ["train", *TINY, "--out", str(tmp_path / "file")], "File exists")
    _refused(capsys, ["train", *TINY, "--out", str(tmp_path / "file" / "run")], "Not a directory")
    assert (tmp_path / "file").read_text() == "mine"


def _root_without_override():
    """The command prefix that runs as root without the capability to ignore file permissions, or None."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    return ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


def _elbo(*args, prefix=(), **kwargs):
    """`python -m elbo ARGS` in a subprocess (after ``prefix``): where the process is the point (its capabilities,
    its lock on a run, a kill)."""
    return subprocess.run([*prefix, sys.executable, "-m", "elbo", *args], capture_output=True, text=True,
                          timeout=600, **kwargs)


def test_an_unwritable_out_is_one_line(tmp_path):
    prefix = _root_without_override() if os.geteuid() == 0 else []
    if prefix is None:
        pytest.skip("as root, without setpriv to drop the capability that ignores permissions")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = _elbo("train", *TINY, "--epochs", "1", "--out", str(locked / "run"), prefix=prefix)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "Permission denied" in result.stderr and str(locked) in result.stderr
    assert list(locked.iterdir()) == []


def _mounted_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_leaves_a_run_the_same_command_can_make_once_there_is_room(tmp_path):
    disk = tmp_path / "disk"
    if not _mounted_tmpfs(disk, "12k"):
        pytest.skip("mounting a small tmpfs needs root and a kernel that allows it here")
    try:
        argv = ["train", *TINY, "--epochs", "1", "--out", str(disk / "run")]
        result = elbo_in_process(*argv)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "No space left on device" in result.stderr
        assert list((disk / "run").iterdir()) == []
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        result = elbo_in_process(*argv)
        assert result.returncode == 0, result.stderr
        assert torch.load(disk / "run" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_disk_that_fills_up_mid_run_keeps_the_last_checkpoint_whole(tmp_path):
    """Room for the first checkpoint (14 pages here) and the run's small files, not for the temporary copy of the
    next: the write fails, the checkpoint of epoch 0 stays whole, and --resume goes on once there is room."""
    disk = tmp_path / "disk"
    if not _mounted_tmpfs(disk, "96k"):
        pytest.skip("mounting a small tmpfs needs root and a kernel that allows it here")
    try:
        result = elbo_in_process("train", *TINY, "--epochs", "2", "--out", str(disk / "run"))
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "No space left on device" in result.stderr
        assert runs.load_run(disk / "run").epoch == 0
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        result = elbo_in_process("train", "--resume", str(disk / "run"), "--quiet")
        assert result.returncode == 0, result.stderr
        assert [m["epoch"] for m in runs.read_metrics(disk / "run")] == [1, 2]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_read_only_file_system_is_one_line_and_the_run_stays(base_run, tmp_path):
    disk = tmp_path / "disk"
    if not _mounted_tmpfs(disk, "4m"):
        pytest.skip("mounting a tmpfs needs root and a kernel that allows it here")
    try:
        shutil.copytree(base_run, disk / "run")
        (disk / "run" / "evaluation.json").unlink()
        before = _hashes(disk / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for args in (["evaluate", str(disk / "run"), "--k", "5", "--max-points", "5"],
                     ["train", *TINY, "--out", str(disk / "new")], ["train", "--resume", str(disk / "run")]):
            result = elbo_in_process(*args)
            assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
            assert "Read-only file system" in result.stderr
        assert _hashes(disk / "run") == before
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# --- two processes on one run -----------------------------------------------------------------------------------

def test_a_second_process_on_a_run_in_use_is_refused_naming_the_holder(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "elbo", "train", *TINY, "--epochs", "100000", "--out",
                              str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.setpriority(os.PRIO_PROCESS, first.pid, 19)  # it only holds the lock now: the CPU to the other processes
        for args in (["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run"), "--force"],
                     ["train", "--resume", str(tmp_path / "run")], ["evaluate", str(tmp_path / "run")],
                     ["surgery", str(tmp_path / "run")], ["report", str(tmp_path / "run")]):
            result = _elbo(*args)
            assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
            assert f"is in use by another elbo process (pid {first.pid})" in result.stderr
    finally:
        first.kill()  # SIGKILL: the operating system releases the lock
        first.wait()
    epoch = runs.read_checkpoint(tmp_path / "run")["epoch"]  # whole, whenever the kill came
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "epochs": epoch + 1}))
    result = elbo_in_process("train", "--resume", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 0, result.stderr


# --- the command line's own checks ------------------------------------------------------------------------------

ARGUMENTS = {
    "train --lr nan": (["train", *TINY, "--lr", "nan", "--out", "x"], "--lr: expected a finite number > 0"),
    "train --lr 0": (["train", *TINY, "--lr", "0", "--out", "x"], "--lr: expected a finite number > 0"),
    "train --epochs 0": (["train", *TINY, "--epochs", "0", "--out", "x"], "--epochs: expected a positive integer"),
    "train --val-size -1": (["train", *TINY, "--val-size", "-1", "--out", "x"], "expected an integer >= 0"),
    "train --val-size too large": (["train", *TINY, "--val-size", "5000", "--out", "x"],
                                   "--val-size must be an integer in [0, 1500)"),
    "train --latent 0": (["train", *TINY, "--latent", "0", "--out", "x"], "--latent: expected a positive integer"),
    "train --hidden 0,5": (["train", *TINY, "--hidden", "0,5", "--out", "x"], "expected a positive integer"),
    "train --hidden per layer": (["train", *TINY, "--latent", "3", "2", "--out", "x"],
                                 "hidden_dims must be a tuple of 2 tuple(s)"),
    "train --seed -1": (["train", *TINY, "--seed", "-1", "--out", "x"], "--seed: expected an integer in [0, 2^63)"),
    "train --seed 10**24": (["train", *TINY, "--seed", str(10**24), "--out", "x"], "--seed: expected an integer"),
    "train --sigma -1": (["train", *TINY, "--sigma", "-1", "--out", "x"], "--sigma: expected a finite number > 0"),
    "train --estimator dreg, elbo": (["train", *TINY, "--estimator", "dreg", "--out", "x"],
                                     "--estimator must be one of 'reparam' for objective 'elbo'"),
    "train --objective gan": (["train", *TINY, "--objective", "gan", "--out", "x"], "invalid choice: 'gan'"),
    "train --model sound": (["train", *TINY, "--model", "sound", "--out", "x"], "invalid choice: 'sound'"),
    "train --nproc 0": (["train", *TINY, "--nproc", "0", "--out", "x"], "--nproc: expected a positive integer"),
    "train --device toaster": (["train", *TINY, "--device", "toaster", "--out", "x"],
                               "--device must name a torch device"),
    "train --device cuda": (["train", *TINY, "--device", "cuda", "--out", "x"], "torch sees no CUDA device"),
    "train --k 10**9": (["train", *TINY, "--k", str(10**9), "--out", "x"], "lower --k or --batch-size"),
    "train no --out": (["train", *TINY], "say where the run goes with --out DIR"),
    "evaluate --k 0": (["evaluate", "x", "--k", "0"], "--k: expected a positive integer"),
    "evaluate --max-points 0": (["evaluate", "x", "--max-points", "0"], "expected a positive integer"),
    "evaluate --seed 10**24": (["evaluate", "x", "--seed", str(10**24)], "--seed: expected an integer"),
    "surgery --split bogus": (["surgery", "x", "--split", "bogus"], "invalid choice: 'bogus'"),
    "surgery --block-size 0": (["surgery", "x", "--block-size", "0"], "expected a positive integer"),
    "diagnose --k 0,1": (["diagnose", "x", "--k", "0,1"], "expected positive integers separated by commas"),
    "diagnose --estimator foo": (["diagnose", "x", "--estimator", "foo"], "expected names among"),
    "fit --seed -1": (["fit", "examples/eight_schools.py", "--seed", "-1"], "--seed: expected an integer"),
}


@pytest.mark.parametrize("argv, match", ARGUMENTS.values(), ids=ARGUMENTS.keys())
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, argv, match)
    assert not any(p.name != runs.LOCK_FILE for p in tmp_path.rglob("*") if p.is_file()), list(tmp_path.rglob("*"))


@pytest.mark.parametrize("command", MEASURES, ids=[m[0] for m in MEASURES])
@pytest.mark.parametrize("device, match", [("toaster", "--device must name a torch device"),
                                           ("cuda", "torch sees no CUDA device"), ("cuda:3", "CUDA device")])
def test_every_command_that_takes_a_device_checks_it(run, capsys, command, device, match):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _refused(capsys, [command[0], str(run), *command[1:], "--device", device, "--quiet"], match, unchanged=run)


def test_the_measuring_commands_refuse_what_their_settings_cannot_do(run, capsys):
    _refused(capsys, ["diagnose", str(run), "--draws", "1", "--quiet"], "--draws must be an integer >= 2",
             unchanged=run)
    if SHARED_DATA.is_dir():  # Frey faces are 28x20, the run's digits 8x8
        _refused(capsys, ["surgery", str(run), "--data", "frey", "--data-dir", str(SHARED_DATA), "--quiet"],
                 "must have shape (N, 64)", unchanged=run)
    _refused(capsys, ["train", "--resume", str(run), "--epochs", "3"], "drop --epochs", unchanged=run)
    huge = str(10**9)  # draws that cannot fit in memory: refused before they are tried
    _refused(capsys, ["surgery", str(run), "--k", huge, "--quiet"], "lower --k or --max-points", unchanged=run)
    _refused(capsys, ["diagnose", str(run), "--k", huge, "--quiet"], "lower --k or --batch-size", unchanged=run)


# --- kill -9 at random moments ----------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "evaluate", "surgery", "report"])
def test_kill_9_at_random_moments_leaves_a_usable_run(base_run, tmp_path, command):
    """Eight kills at random moments of each command: afterwards the run loads, every JSON file in it is whole, and
    the same command, run again, succeeds."""
    rng = random.Random(13)
    for trial in range(8):
        path = tmp_path / f"run{trial}"
        shutil.copytree(base_run, path)
        args = {"train": ["train", "--resume", str(path)], "evaluate": ["evaluate", str(path), "--k", "200"],
                "surgery": ["surgery", str(path)], "report": ["report", str(path), "--compute"]}[command]
        if command == "train":
            config = json.loads((path / "config.json").read_text())
            (path / "config.json").write_text(json.dumps({**config, "epochs": 6}))
        process = subprocess.Popen([sys.executable, "-m", "elbo", *args, "--quiet"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        runs.load_run(path)
        for name in ("evaluation.json", "surgery.json", "diagnostics.json", "config.json"):
            if (path / name).exists():
                json.loads((path / name).read_text())
        result = _elbo(*args, "--quiet")
        assert result.returncode == 0, result.stderr
