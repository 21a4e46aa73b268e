"""The `elbo` command end to end, in a subprocess as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run_elbo(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "elbo", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_demo_prints_bounds_next_to_the_exact_evidence():
    result = run_elbo("demo", "--k", "200")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "log p(x)" in lines[1]
    full_rank = lines[3].split()
    assert full_rank[0] == "FullRank"
    elbo, iwae, log_evidence, kl = map(float, full_rank[1:])
    assert abs(iwae - log_evidence) < 1e-3 and kl < 1e-3 and elbo <= log_evidence + 1e-3


def test_bad_option_exits_2_with_one_line():
    result = run_elbo("demo", "--k", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "elbo demo: error: argument --k: expected a positive integer, got '0'")


def test_every_command_has_help():
    for args in (["--help"], ["demo", "--help"], ["fit", "--help"]):
        result = run_elbo(*args)
        assert result.returncode == 0 and "usage: elbo" in result.stdout


# --- elbo fit ----------------------------------------------------------------------------------------------------

EIGHT_SCHOOLS = str(Path(__file__).resolve().parent.parent / "examples" / "eight_schools.py")


def test_fit_compares_vi_with_nuts_per_parameter_as_json():
    """A short fit and a tiny NUTS run on eight schools: one row per scalar component, VI's errors in NUTS sds.
    With 100 NUTS draws their means are known to ~0.15 sd, and VI after 500 steps is within ~0.2 sd of them
    (the full run: README), so every |mean error| must be below 1.5."""
    result = run_elbo("fit", EIGHT_SCHOOLS, "--family", "fullrank", "--max-steps", "500", "--num-draws", "2000",
                      "--compare-nuts", "--nuts-samples", "100", "--nuts-warmup", "100", "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    names = [row["name"] for row in output["parameters"]]
    assert names == ["mu", "tau"] + [f"eta[{i}]" for i in range(8)]
    for row in output["parameters"]:
        assert abs(row["mean_error"]) < 1.5 and row["vi_sd"] > 0 and row["nuts_sd"] > 0
        assert row["mean_error"] == (row["vi_mean"] - row["nuts_mean"]) / row["nuts_sd"]
    assert output["steps"] == 500 and output["vi_seconds"] > 0 and output["nuts_seconds"] > 0
    assert output["khat_meaning"].startswith(("k̂ <", "0.5 ≤", "k̂ ≥")) and isinstance(output["khat"], float)
    assert output["elbo"] <= output["log_evidence"] + 4.5 * output["log_evidence_stderr"]


def test_fit_prints_a_table():
    result = run_elbo("fit", EIGHT_SCHOOLS, "--family", "meanfield", "--max-steps", "300", "--num-draws", "500")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["parameter", "VI", "mean", "VI", "sd"]
    assert [line.split()[0] for line in lines[2:12]] == ["mu", "tau"] + [f"eta[{i}]" for i in range(8)]
    assert lines[12].startswith("k̂ = ") and lines[14].startswith("VI: 300 steps (stopped at --max-steps)")


@pytest.mark.parametrize("source, args, message", [
    ("x = 1\n", [], "does not define `model` (an elbo.Model)"),
    (None, ["--family", "gaussian"], "unknown family 'gaussian': use one of 'meanfield', 'fullrank'"),
    ("import elbo\nmodel = elbo.Model(params={'a': elbo.Param(())}, log_joint=lambda p: p['a'] * float('nan'))\n",
     [], "the log density is NaN or inf at every one of the 100 initial points tried"),
    ("import elbo\nmodel = elbo.Model(params={'a': elbo.Param(())}, log_joint=lambda p: p['a'].sum())\n",
     [], "log_joint returned (), expected shape (100,)"),
    ("import elbo, torch\nmodel = elbo.Model(params={'a': elbo.Param((2, 2), "
     "torch.distributions.constraints.positive_definite)}, log_joint=sum)\n", [], "unknown constraint"),
])
def test_fit_bad_input_exits_2_with_one_line(tmp_path, source, args, message):
    path = tmp_path / "model.py"
    if source is None:
        path = Path(EIGHT_SCHOOLS)
    else:
        path.write_text(source)
    result = run_elbo("fit", str(path), *args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    assert result.stderr.startswith("elbo fit: error: ") and message in result.stderr


def test_fit_of_a_missing_file_exits_2(tmp_path):
    result = run_elbo("fit", str(tmp_path / "missing.py"))
    assert result.returncode == 2 and result.stderr.strip() == f"elbo fit: error: no model file {tmp_path}/missing.py"
