"""The `elbo` command end to end, in this process (``cli.main``; ``elbo_in_process`` where a test reads what a
process would print and its exit code), and in subprocesses where the process is the point: torchrun's, and one
that has not imported torch."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from elbo import bbvi, cli, configs, fit_config, registry
from elbo.models.images import datasets as data
from helpers import elbo_in_process, fresh_process, random_mnist, trust, write_frey

pytestmark = pytest.mark.e2e

TINY = ["--data", "digits", "--latent", "3", "--hidden", "16", "--batch-size", "100", "--quiet"]


def test_demo_prints_bounds_next_to_the_exact_evidence():
    result = elbo_in_process("demo", "--k", "200", "--skip-vae")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "log p(x)" in lines[1]
    full_rank = lines[3].split()
    assert full_rank[0] == "FullRank"
    elbo, iwae, log_evidence, kl = map(float, full_rank[1:])
    assert abs(iwae - log_evidence) < 1e-3 and kl < 1e-3 and elbo <= log_evidence + 1e-3


def test_bad_option_exits_2_with_one_line():
    result = elbo_in_process("demo", "--k", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["elbo demo: error: argument --k: expected a positive integer, got '0'"]


def test_every_command_has_help():
    for args in (["--help"], ["demo", "--help"], ["train", "--help"], ["evaluate", "--help"], ["fit", "--help"]):
        result = elbo_in_process(*args)
        assert result.returncode == 0 and "usage: elbo" in result.stdout
        # a default is shown in one form, where it says something: never "None" for an option that names its own
        # default in its help, nor "False" for a flag
        assert "(default" not in result.stdout
        assert "[default: None]" not in result.stdout and "[default: False]" not in result.stdout
    fit_help = elbo_in_process("fit", "--help").stdout
    assert "--family {meanfield,fullrank,lowrank,flow,hierarchical}" in fit_help
    assert "random seed [default: 0]" in fit_help
    assert "--resume DIR" in elbo_in_process("train", "--help").stdout


def _choices(command: str, dest: str) -> tuple:
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    return tuple(next(action for action in commands[command]._actions if action.dest == dest).choices)


def test_the_cli_reads_its_choices_from_the_library_s_tables():
    assert _choices("train", "data") == registry.DATASETS.names()
    assert {"digits", "mnist", "binarized_mnist", "frey", "20news", "bbc"} <= set(registry.DATASETS.names())
    assert _choices("train", "model") == registry.KINDS.names()
    assert _choices("train", "likelihood") == registry.LIKELIHOODS.names()
    assert _choices("train", "objective") == configs.OBJECTIVES and _choices("surgery", "split") == configs.SPLITS
    assert _choices("fit", "family") == fit_config.FAMILIES == tuple(bbvi.FAMILIES)
    assert _choices("fit", "method") == bbvi.METHODS and _choices("fit", "init") == bbvi.INITS
    registry.LIKELIHOODS.register("poisson", "elbo.likelihoods:BernoulliLikelihood")  # a new head: a new choice
    try:
        assert "poisson" in _choices("train", "likelihood")
    finally:
        registry.LIKELIHOODS.unregister("poisson")


def test_help_imports_no_torch():
    for command in ("train", "evaluate", "fit"):
        code = (f"import sys\nfrom elbo.cli import main\ntry:\n    main(['{command}', '--help'])\nexcept SystemExit:\n"
                f"    pass\nassert 'torch' not in sys.modules, [m for m in sys.modules if 'torch' in m][:3]\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: elbo" in result.stdout, result.stderr


def test_the_measuring_commands_have_help(capsys):
    for command in ("surgery", "diagnose", "report"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--help"])
        assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: elbo {command} ")


def test_train_one_epoch_then_evaluate(tmp_path):
    """The smoke run: one epoch on the bundled digits, then `elbo evaluate --json` and its evaluation.json."""
    result = elbo_in_process("train", *TINY, "--epochs", "1", "--objective", "iwae", "--k", "3",
                             "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"run {tmp_path / 'run'}: epoch 1, training bound -")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "config.json", "metrics.jsonl"]
    result = elbo_in_process("evaluate", str(tmp_path / "run"), "--k", "100", "--iwae-k", "2", "10", "--json",
                             "--quiet")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert printed["epoch"] == 1 and printed["num_points"] == 297 and set(printed["iwae"]) == {"2", "10"}
    assert printed["elbo"]["mean"] < printed["log_likelihood"]["mean"] < 0
    table = elbo_in_process("evaluate", str(tmp_path / "run"), "--k", "20", "--quiet")
    assert "log p(x) (IWAE-20)" in table.stdout and "active units" in table.stdout


def _one_line_exit_2(capsys, argv, match):
    code = cli.main(argv)
    error = capsys.readouterr().err
    assert code == 2 and len(error.splitlines()) == 1 and match in error, error
    return error


def test_an_existing_run_is_refused_and_left_alone(tmp_path, capsys):
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    _one_line_exit_2(capsys, ["train", *TINY, "--epochs", "2", "--out", str(tmp_path / "run")],
                     "already holds a run (config.json, metrics.jsonl, checkpoint.pt)")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    _one_line_exit_2(capsys, ["train", "--resume", str(tmp_path / "run"), "--epochs", "3"],
                     "--resume continues a run with its own settings; drop --epochs")


def test_unknown_names_exit_2_with_one_line(capsys):
    for argv, match in ((["train", "--data", "cifar", "--out", "x"], "invalid choice: 'cifar'"),
                        (["train", "--model", "gan", "--out", "x"], "invalid choice: 'gan'")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and len(error.splitlines()) == 1 and match in error


def test_missing_or_corrupt_data_exits_2_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(data.URLS, "train-images-idx3-ubyte", [(tmp_path / "offline.gz").as_uri()])
    out = tmp_path / "run"
    _one_line_exit_2(capsys, ["train", "--data", "mnist", "--data-dir", str(tmp_path / "empty"), "--out", str(out)],
                     "train-images-idx3-ubyte (or train-images-idx3-ubyte.gz) is missing from")
    random_mnist(tmp_path / "generated")  # files whose content is not the real MNIST: the checksum fails
    _one_line_exit_2(capsys, ["train", "--data", "mnist", "--data-dir", str(tmp_path / "generated"),
                              "--out", str(out)], "SHA-256 of the content is")
    assert not out.exists()


def test_nan_pixels_and_values_outside_0_1_for_a_bernoulli_exit_2(tmp_path, capsys, monkeypatch):
    ff = np.random.default_rng(0).uniform(0, 255, (560, 400))
    ff[3, 7] = np.nan
    trust(monkeypatch, write_frey(tmp_path / "nan" / "frey_rawface.mat", ff))
    _one_line_exit_2(capsys, ["train", "--data", "frey", "--data-dir", str(tmp_path / "nan"), "--out",
                              str(tmp_path / "a")], "1 NaN or infinite pixel values")
    trust(monkeypatch, write_frey(tmp_path / "grey" / "frey_rawface.mat", np.nan_to_num(ff)))
    _one_line_exit_2(capsys, ["train", "--data", "frey", "--data-dir", str(tmp_path / "grey"), "--likelihood",
                              "bernoulli", "--out", str(tmp_path / "b")], "needs pixel values in [0, 1]")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_unreadable_runs_and_corrupt_checkpoints_exit_2(tmp_path, capsys):
    _one_line_exit_2(capsys, ["evaluate", str(tmp_path / "nowhere")], "is not a run directory")
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    for argv in (["evaluate", str(tmp_path / "run")], ["train", "--resume", str(tmp_path / "run")]):
        _one_line_exit_2(capsys, argv, "checkpoint.pt is corrupt or not a checkpoint")
    assert checkpoint.read_bytes() == b"not a checkpoint"


def test_demo_trains_and_evaluates_a_vae_and_an_iwae_on_digits(tmp_path, capsys):
    with fresh_process():  # float32, as `elbo demo` runs for a user (and twice as fast as float64)
        assert cli.main(["demo", "--k", "50", "--epochs", "2", "--quiet", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("VAE      ", "IWAE (K=5)  "))]
    assert [row[0] for row in rows] == ["VAE", "IWAE"]
    for row in rows:  # name, ELBO ± se, IWAE-50 ± se, log p(x) ± se, active, seconds
        elbo, log_p = float(row[-11]), float(row[-5])
        assert elbo < log_p < 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iwae-5", "vae"]
    assert (tmp_path / "vae" / "evaluation.json").is_file()
    assert lines[-2:] == [f"report of the VAE: {tmp_path / 'vae' / 'report.html'}",
                          f"report of the IWAE (K=5): {tmp_path / 'iwae-5' / 'report.html'}"]
    for run in ("vae", "iwae-5"):  # the demo's reports hold its evaluation and its surgery
        document = (tmp_path / run / "report.html").read_text()
        assert "index-code MI" in document and "log p(x) (IWAE-5000)" in document


@pytest.mark.timeout(300)
def test_train_under_torchrun_matches_one_process(tmp_path):
    """`torchrun --nproc-per-node 2 -m elbo train ...`: each process finds its rank in torchrun's environment, only
    rank 0 writes the run and prints its one-line report, and the training bound and the parameters are those of
    `elbo train` (the validation bound is not: each process draws the noise of its validation images itself)."""
    args = ["train", *TINY, "--epochs", "2", "--objective", "iwae", "--k", "2"]
    single = elbo_in_process(*args, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "elbo", *args, "--out", str(tmp_path / "two")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.split(", validation")[0] == single.stdout.split(", validation")[0].replace("one:", "two:")
    one, two = (torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["model"] for name in ("one", "two"))
    for name in one:  # float32, sums over the batch in another order
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6, msg=name)


def test_nproc_that_does_not_divide_the_batch_exits_2(tmp_path, capsys):
    _one_line_exit_2(capsys, ["train", *TINY, "--nproc", "3", "--out", str(tmp_path / "run")],
                     "--batch-size 100 is the global batch, split evenly over the processes")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(path)]) == 0
    return path


def test_surgery_prints_a_table_or_json_and_writes_surgery_json(tiny_run, capsys):
    capsys.readouterr()
    assert cli.main(["surgery", str(tiny_run), "--json", "--quiet", "--dimension-samples", "500"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tiny_run / "surgery.json").read_text())
    assert printed["split"] == "train" and printed["num_points"] == 1350 and printed["dimension_samples"] == 500
    assert cli.main(["surgery", str(tiny_run), "--quiet", "--split", "test", "--max-points", "100", "--k", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("digits test set, N = 100 points, 2 draw(s) of z per point; nats per point, mean ± "
                             "standard error")
    assert [line.split()[0] for line in table[1:8]] == ["reconstruction", "index-code", "marginal", "total",
                                                         "dimension-wise", "E_n", "ELBO"]
    assert table[-2] == "standard errors: Monte Carlo error given the data set"
    assert table[-1].startswith(f"written to {tiny_run}/surgery.json")
    assert printed["standard_errors"].startswith("over the points (one draw each): an upper bound")


def test_diagnose_prints_units_and_the_snr_table(tiny_run, capsys):
    capsys.readouterr()
    assert cli.main(["diagnose", str(tiny_run), "--k", "1,4", "--estimator", "reparam,dreg", "--draws", "3",
                     "--batch-size", "10", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("reparam ", "dreg "))]
    assert [(row[0], row[1]) for row in rows] == [("reparam", "1"), ("reparam", "4"), ("dreg", "1"), ("dreg", "4")]
    saved = json.loads((tiny_run / "diagnostics.json").read_text())
    assert [float(row[2]) for row in rows] == pytest.approx([r["encoder"] for r in saved["gradient_snr"]], abs=1e-4)
    assert saved["latent_dim"] == 3 and len(saved["kl_per_dimension"]) == 3 and saved["snr_batch_size"] == 10
    assert cli.main(["diagnose", str(tiny_run), "--k", "2", "--estimator", "stl", "--draws", "2", "--json",
                     "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["gradient_snr"][0]["estimator"] == "stl"


def test_report_writes_report_html_and_prints_its_path(tiny_run, capsys):
    capsys.readouterr()
    assert cli.main(["report", str(tiny_run), "--quiet"]) == 0
    assert capsys.readouterr().out == f"{tiny_run / 'report.html'}\n"
    assert "<h2>ELBO surgery</h2>" in (tiny_run / "report.html").read_text()


def test_bad_runs_data_and_k_exit_2_and_overwrite_nothing(tiny_run, tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    for command in ("surgery", "diagnose", "report"):
        _one_line_exit_2(capsys, [command, str(tmp_path / "empty")], "is not a run directory of `elbo train`: it "
                                                                     "has no checkpoint.pt")
    trust(monkeypatch, *random_mnist(tmp_path / "mnist"))  # 28x28 images for a model of 8x8 ones
    before = {name: (tiny_run / name).read_bytes() if (tiny_run / name).exists() else None
              for name in ("surgery.json", "diagnostics.json")}
    for command in ("surgery", "diagnose"):
        with pytest.warns(UserWarning, match="MNIST is loaded without labels"):  # the files hold only images
            _one_line_exit_2(capsys, [command, str(tiny_run), "--data", "mnist", "--data-dir", str(tmp_path / "mnist")],
                             "x must have shape (N, 64) (flattened (8, 8) images), got (")
    for argv, match in ((["diagnose", str(tiny_run), "--k", "1,0"], "argument --k: expected positive integers "
                                                                    "separated by commas (e.g. 1,5,50), got '1,0'"),
                        (["diagnose", str(tiny_run), "--k", "5,x"], "got '5,x'"),
                        (["diagnose", str(tiny_run), "--k", "-5"], "got '-5'"),
                        (["diagnose", str(tiny_run), "--estimator", "reparam,score"], "got 'reparam,score'"),
                        (["surgery", str(tiny_run), "--k", "0"], "argument --k: expected a positive integer")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and len(error.splitlines()) == 1 and match in error, error
    after = {name: (tiny_run / name).read_bytes() if (tiny_run / name).exists() else None for name in before}
    assert after == before


# --- elbo fit ----------------------------------------------------------------------------------------------------

EIGHT_SCHOOLS = str(Path(__file__).resolve().parent.parent / "examples" / "eight_schools.py")


def test_fit_compares_vi_with_nuts_per_parameter_as_json():
    """A short fit and a tiny NUTS run on eight schools: one row per scalar component, VI's errors in NUTS sds.
    With 100 NUTS draws their means are known to ~0.15 sd, and VI after 500 steps is within ~0.2 sd of them
    (the full run: README), so every |mean error| must be below 1.5."""
    result = elbo_in_process("fit", EIGHT_SCHOOLS, "--family", "fullrank", "--method", "advi", "--init", "point",
                             "--max-steps", "500", "--num-draws", "2000", "--compare-nuts", "--nuts-samples", "100",
                             "--nuts-warmup", "100", "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    names = [row["name"] for row in output["parameters"]]
    assert names == ["mu", "tau"] + [f"eta[{i}]" for i in range(8)]
    for row in output["parameters"]:
        assert abs(row["mean_error"]) < 1.5 and row["vi_sd"] > 0 and row["nuts_sd"] > 0
        assert row["mean_error"] == (row["vi_mean"] - row["nuts_mean"]) / row["nuts_sd"]
    assert output["steps"] == 500 and output["vi_seconds"] > 0 and output["nuts_seconds"] > 0
    assert output["method"] == "advi" and output["num_grad_evals"] == 500 * 8 and not output["converged"]
    assert output["khat_meaning"].startswith(("k̂ <", "0.5 ≤", "k̂ ≥")) and isinstance(output["khat"], float)
    assert output["elbo"] <= output["log_evidence"] + 4.5 * output["log_evidence_stderr"]


def test_fit_prints_a_table():
    result = elbo_in_process("fit", EIGHT_SCHOOLS, "--family", "meanfield", "--max-steps", "300", "--num-draws", "500")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["parameter", "VI", "mean", "VI", "sd", "PSIS", "mean", "PSIS", "sd"]
    assert [line.split()[0] for line in lines[2:12]] == ["mu", "tau"] + [f"eta[{i}]" for i in range(8)]
    assert lines[12].startswith("k̂ = ") and lines[14].startswith("VI (advi): ")
    assert "warning: the fit did not converge; raise --max-steps" in lines or "converged at step" in lines[14]


@pytest.mark.parametrize("source, args, message", [
    ("x = 1\n", [], "does not define `model` (an elbo.Model)"),
    (None, ["--family", "gaussian"], "argument --family: invalid choice: 'gaussian' (choose from 'meanfield', "),
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
    result = elbo_in_process("fit", str(path), *args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    assert result.stderr.startswith("elbo fit: error: ") and message in result.stderr


def test_fit_of_a_missing_file_exits_2(tmp_path):
    result = elbo_in_process("fit", str(tmp_path / "missing.py"))
    assert result.returncode == 2 and result.stderr.strip() == f"elbo fit: error: no model file {tmp_path}/missing.py"


def test_fit_says_when_q_puts_mass_where_the_model_has_none(tmp_path):
    """The library's warnings are folded into the table: a density that is -inf on z > 1, which the constraints do
    not say, leaves many of q's draws with log p = -inf, and the table says so in a warning line."""
    path = tmp_path / "truncated.py"
    path.write_text("import torch\nimport elbo\nfrom torch.distributions import Normal\n"
                    "model = elbo.Model(params={'z': elbo.Param(())}, log_joint=lambda p: torch.where(\n"
                    "    p['z'] > 1.0, torch.tensor(-float('inf')), Normal(0.0, 1.0).log_prob(p['z'])))\n")
    result = elbo_in_process("fit", str(path), "--num-draws", "1000", "--max-steps", "200")
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("warning: log p is NaN or -inf at ") and line.endswith("of 1000 draws of q: q puts "
               "mass where the model has none") for line in result.stdout.splitlines()), result.stdout
