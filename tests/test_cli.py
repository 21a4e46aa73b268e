"""The `elbo` command end to end, in a subprocess as a user runs it."""

import subprocess
import sys


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
    assert result.stderr.strip().splitlines()[-1] == "elbo demo: error: argument --k: expected a positive integer, got '0'"


def test_every_command_has_help():
    for args in (["--help"], ["demo", "--help"]):
        result = run_elbo(*args)
        assert result.returncode == 0 and "usage: elbo" in result.stdout
