"""``elbo evaluate RUN --ais STEPS --bdmc STEPS`` end to end on a tiny run: the fields of evaluation.json, the table,
the report's ladder, and bad settings as one line with exit code 2 and nothing overwritten."""

import json

import pytest

from elbo import cli, schemas
from helpers import elbo_in_process

pytestmark = pytest.mark.e2e

TINY = ["--data", "digits", "--latent", "3", "--hidden", "16", "--batch-size", "100", "--quiet"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ais") / "run"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(path)]) == 0
    return path


def test_evaluate_writes_the_bounds_and_the_report_shows_the_ladder(tiny_run):
    result = elbo_in_process("evaluate", str(tiny_run), "--k", "20", "--iwae-k", "--max-points", "30", "--ais", "10",
                             "--bdmc", "10", "--chains", "3", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == schemas.check("evaluation", json.loads((tiny_run / "evaluation.json").read_text()), "file")
    assert (printed["ais"]["num_steps"], printed["ais"]["num_chains"], printed["ais"]["start"]) == (10, 3, "guide")
    assert 1 <= printed["ais"]["ess"] <= 3 and printed["bdmc"]["num_points"] == 30
    assert printed["bdmc"]["gap"]["mean"] == pytest.approx(printed["bdmc"]["upper"]["mean"]
                                                           - printed["bdmc"]["lower"]["mean"])
    table = elbo_in_process("evaluate", str(tiny_run), "--k", "20", "--max-points", "20", "--ais", "5",
                            "--ais-start", "prior", "--quiet").stdout
    assert " AIS-5 " in table and "3 chains" not in table and "16 chains from the prior" in table
    assert "BDMC" not in table
    assert cli.main(["report", str(tiny_run), "--quiet"]) == 0
    report = (tiny_run / "report.html").read_text()
    assert "<h2>Bounds on log p(x)</h2>" in report and "the importance-sampling gap" in report


@pytest.mark.parametrize("argv, message", [
    (["--chains", "4"], "--chains is a setting of AIS and BDMC: give --ais or --bdmc too"),
    (["--ais-start", "prior"], "--ais-start is a setting of AIS and BDMC"),
])
def test_bad_ais_settings_exit_2_with_one_line_and_overwrite_nothing(tiny_run, capsys, argv, message):
    before = (tiny_run / "evaluation.json").read_bytes() if (tiny_run / "evaluation.json").exists() else None
    assert cli.main(["evaluate", str(tiny_run), "--quiet", *argv]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and message in error, error
    after = (tiny_run / "evaluation.json").read_bytes() if (tiny_run / "evaluation.json").exists() else None
    assert after == before


@pytest.mark.parametrize("argv", [["--ais", "0"], ["--bdmc", "-3"], ["--ais", "5", "--ais-start", "posterior"]])
def test_bad_ais_values_exit_2(tiny_run, capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", str(tiny_run), "--quiet", *argv])
    assert exit_.value.code == 2 and len(capsys.readouterr().err.splitlines()) == 1
