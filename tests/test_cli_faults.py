"""Hostile input and faults at the command line (issue 13): an error in the user's model file is one line naming the
file's own line, exit 2 (``--traceback`` or ``ELBO_TRACEBACK=1``: the full traceback); Ctrl-C at any moment is one
line, exit 130. What a process prints and its exit code, from ``elbo_in_process``; in a subprocess, as a user runs
it, where the process is the point: Ctrl-C, and the working directory on the model file's ``sys.path``."""

import os
import signal
import subprocess
import sys
import time

import pytest

from elbo import bbvi, cli
from helpers import elbo_in_process

pytestmark = pytest.mark.e2e

QUICK = ["--max-steps", "5", "--num-draws", "20"]

KEY_ERROR = """import elbo


def log_joint(p):
    return -0.5 * p['muu'] ** 2


model = elbo.Model(params={'mu': elbo.Param(())}, log_joint=log_joint)
"""


def run_elbo(*args, cwd=None):
    """`python -m elbo ARGS` in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "elbo", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def assert_one_line(result, code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr.rstrip("\n")


# (what is wrong, the model file's content, what stderr says after "elbo fit: error: {path}")
FAULTS = [
    ("syntax error", "import elbo\nx = (\n", ":2: SyntaxError: '(' was never closed"),
    ("null byte", b"import elbo\n\0\n", ":2: SyntaxError: source code string cannot contain null bytes"),
    ("bad indentation", "import elbo\n  x = 1\n", ":2: IndentationError: unexpected indent"),
    ("failing import", "import elbo\nimport no_such_module_of_elbo_tests\n",
     ":2: ModuleNotFoundError: No module named 'no_such_module_of_elbo_tests'"),
    ("NameError at the top", "import elbo\nmodel = elbo.Model(params={'a': elbo.Param(())}, log_joint=lj)\n",
     ":2: NameError: name 'lj' is not defined"),
    ("sys.exit at the top", "import sys\nsys.exit(3)\n", ":2: SystemExit: 3"),
    ("the library's own check at the top", "import elbo\nmodel = elbo.Model(params={'a': elbo.Param(-1)}, "
     "log_joint=sum)\n", ":2: Param shape must be a tuple of positive integers, got -1"),
    ("KeyError in log_joint", KEY_ERROR, ":5: KeyError: 'muu'"),
    ("shape error in log_joint", "import elbo\nimport torch\n\n\ndef log_joint(p):\n"
     "    return (p['mu'] * torch.ones(3)).sum(-1)\n\n\n"
     "model = elbo.Model(params={'mu': elbo.Param(2)}, log_joint=log_joint)\n",
     ":6: RuntimeError: The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 1"),
    ("KeyError in a vectorized log_joint", KEY_ERROR.replace("log_joint=log_joint", "log_joint=log_joint, "
                                                             "vectorize=True"), ":5: KeyError: 'muu'"),
    ("a message of many lines", "import elbo\n\n\ndef log_joint(p):\n    raise ValueError('no\\n  good')\n\n\n"
     "model = elbo.Model(params={'mu': elbo.Param(())}, log_joint=log_joint)\n", ":5: ValueError: no good"),
    ("an error late in the fit", "import elbo\n\nCALLS = []\n\n\ndef log_joint(p):\n    CALLS.append(1)\n"
     "    if len(CALLS) > 3:\n        raise FloatingPointError('call 4')\n    return -0.5 * p['mu'] ** 2\n\n\n"
     "model = elbo.Model(params={'mu': elbo.Param(())}, log_joint=log_joint)\n",
     ":9: FloatingPointError: call 4"),
]


@pytest.mark.parametrize("source, says", [fault[1:] for fault in FAULTS], ids=[fault[0] for fault in FAULTS])
def test_an_error_in_the_model_file_is_one_line_naming_its_line(tmp_path, source, says):
    path = tmp_path / "model.py"
    path.write_bytes(source if isinstance(source, bytes) else source.encode())
    result = elbo_in_process("fit", str(path), *QUICK)
    assert assert_one_line(result, 2) == f"elbo fit: error: {path}{says}"
    assert result.stdout == ""


def test_an_error_in_a_module_the_model_file_imports_names_the_model_files_line(tmp_path):
    (tmp_path / "helper.py").write_text("def f():\n    return 1 / 0\n")
    path = tmp_path / "model.py"
    path.write_text("import elbo\nfrom helper import f\n\nf()\n")
    result = run_elbo("fit", str(path), *QUICK, cwd=tmp_path)  # `python -m` puts the working directory on sys.path
    assert assert_one_line(result, 2) == f"elbo fit: error: {path}:4: ZeroDivisionError: division by zero"


def test_a_model_file_that_defines_no_model_or_is_a_directory_is_one_line(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    says = assert_one_line(elbo_in_process("fit", str(empty), *QUICK), 2)
    assert says == f"elbo fit: error: {empty} does not define `model` (an elbo.Model)"
    folder = tmp_path / "folder.py"
    folder.mkdir()
    says = assert_one_line(elbo_in_process("fit", str(folder), *QUICK), 2)
    assert says == f"elbo fit: error: model file {folder} is a directory, expected a Python file"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_model_file_is_one_line(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(KEY_ERROR)
    path.chmod(0)
    try:
        says = assert_one_line(elbo_in_process("fit", str(path), *QUICK), 2)
    finally:
        path.chmod(0o600)
    assert says.startswith("elbo fit: error: ") and "Permission denied" in says and str(path) in says


def test_an_os_error_reading_the_model_file_is_one_line(tmp_path, monkeypatch, capsys):
    """What an unreadable file gets, as root too: the OSError of reading it, as main prints OS errors."""
    path = tmp_path / "model.py"
    path.write_text(KEY_ERROR)

    def unreadable(name, **options):
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(bbvi.model_file.runpy, "run_path", unreadable)
    assert cli.main(["fit", str(path), *QUICK]) == 2
    assert capsys.readouterr().err == f"elbo fit: error: {path}: Permission denied\n"


@pytest.mark.parametrize("how", [["--traceback"], "ELBO_TRACEBACK"])
def test_traceback_shows_the_model_files_frames(tmp_path, how):
    path = tmp_path / "model.py"
    path.write_text(KEY_ERROR)
    if how == "ELBO_TRACEBACK":
        result = elbo_in_process("fit", str(path), *QUICK, env={"ELBO_TRACEBACK": "1"})
    else:
        result = elbo_in_process("fit", str(path), *QUICK, *how)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert f'File "{path}", line 5, in log_joint' in result.stderr and "\nKeyError: 'muu'\n" in result.stderr
    assert result.stderr.rstrip().endswith(f"{path}:5: KeyError: 'muu'")


def test_elbo_traceback_shows_the_traceback_of_any_command(tmp_path):
    missing = tmp_path / "missing"
    says = assert_one_line(elbo_in_process("evaluate", str(missing)), 2)
    assert says == f"elbo evaluate: error: {missing} is not a run directory (no such directory)"
    result = elbo_in_process("evaluate", str(missing), env={"ELBO_TRACEBACK": "1"})
    assert result.returncode == 2 and result.stderr.startswith("Traceback (most recent call last):")
    assert "elbo.errors.InputError: " in result.stderr


def test_an_error_outside_the_model_file_is_not_the_files():
    """The library's own errors (bugs) keep their traceback: only an error whose traceback passes through the model
    file is put on the file's line."""
    try:
        {}["x"]
    except KeyError as error:
        assert bbvi.model_file.error_in_file(error, "elsewhere.py") is None
        assert bbvi.model_file.error_in_file(error, __file__).startswith(f"{__file__}:")


# --- Ctrl-C ------------------------------------------------------------------------------------------------------

def interrupted(args: list, after: float) -> subprocess.CompletedProcess:
    """``elbo *args`` sent SIGINT ``after`` seconds after it started: while it imports torch (0.3 s), or scipy and
    scikit-learn and loads the data (1.5 s), or fits."""
    process = subprocess.Popen([sys.executable, "-m", "elbo", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("after", [0.3, 0.8, 1.5])
def test_ctrl_c_early_in_train_is_one_line_and_exit_130(tmp_path, after):
    out = tmp_path / "run"
    result = interrupted(["train", "--data", "digits", "--latent", "3", "--hidden", "16", "--epochs", "100",
                          "--quiet", "--out", str(out)], after)
    if result.returncode == 0:
        pytest.fail("the run finished before it was interrupted")
    says = assert_one_line(result, 130)
    if (out / "checkpoint.pt").is_file():  # interrupted after its first epoch
        assert says == f"elbo train: interrupted; continue with: elbo train --resume {out}"
    else:  # on a busy machine 0.3 s can come before the command is read: then the command is not named yet
        assert says in ("elbo train: interrupted", "elbo: interrupted")


@pytest.mark.parametrize("after", [0.3, 1.5])
def test_ctrl_c_in_fit_is_one_line_and_exit_130(tmp_path, after):
    path = tmp_path / "model.py"
    path.write_text("import elbo\nmodel = elbo.Model(params={'mu': elbo.Param(())}, "
                    "log_joint=lambda p: -0.5 * p['mu'] ** 2)\n")
    result = interrupted(["fit", str(path), "--method", "advi", "--max-steps", "1000000"], after)
    assert assert_one_line(result, 130) == "elbo fit: interrupted"


def test_ctrl_c_before_the_command_is_known(monkeypatch, capsys):
    def parser():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", parser)
    assert cli.main(["fit", "model.py"]) == 130
    assert capsys.readouterr().err == "elbo: interrupted\n"
