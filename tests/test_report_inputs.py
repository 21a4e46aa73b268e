"""Hostile measurement files (issue 13): `elbo report` checks evaluation.json, surgery.json and diagnostics.json
against their schemas (``elbo.schemas``) before it writes anything. A file of the wrong shape is one line on stderr
naming it, exit code 2, and the run directory is byte for byte as it was; with ``compute=True`` an evaluation or a
surgery that fails its check is computed anew. The real outputs of the three commands pass their checks."""

import copy
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from elbo import cli, diagnostics, evaluate, report, schemas, surgery, train
from elbo.errors import InputError
from elbo.models.images.config import VAEConfig

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A VAE with a 2-D latent space trained for 2 epochs on the bundled digits, with all three measurement files
    (small settings), and what each command returned. In float64, as every test runs (``conftest.py``; its fixture
    is per test, so a module's starts before it)."""
    path = tmp_path_factory.mktemp("report_inputs") / "run"
    config = train.TrainConfig(data="digits", model=VAEConfig(latent_dims=(2,), hidden_dims=((16,),)), epochs=2,
                               batch_size=100)
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    try:
        train.train(config, path, progress=False)
        outputs = {"evaluation": evaluate.evaluate_run(path, num_samples=20, max_points=20),
                   "surgery": surgery.surgery_run(path, max_points=50),
                   "diagnostics": diagnostics.diagnose_run(path, num_draws=3, num_samples=(1, 2))}
    finally:
        torch.set_default_dtype(dtype)
    return path, outputs


@pytest.fixture
def run(measured, tmp_path):
    """A copy of the measured run for one test to write into."""
    return Path(shutil.copytree(measured[0], tmp_path / "run"))


def _changed(value: dict, change) -> dict:
    value = copy.deepcopy(value)
    change(value)
    return value


def _without(*keys):
    def change(value):
        for key in keys[:-1]:
            value = value[key]
        del value[keys[-1]]
    return change


def _set(*keys_and_value):
    *keys, new = keys_and_value

    def change(value):
        for key in keys[:-1]:
            value = value[key]
        value[keys[-1]] = new
    return change


# (file kind, a function of the valid content giving the bad content or raw bytes, what the message says)
BAD_FILES = {
    "empty object": ("evaluation", lambda v: {}, 'missing "run"'),
    "a list": ("evaluation", lambda v: [1, 2, 3], "a list, not a JSON object"),
    "a string": ("evaluation", lambda v: "text", "a string, not a JSON object"),
    "null": ("surgery", lambda v: None, "null, not a JSON object"),
    "a number": ("diagnostics", lambda v: 3.5, "a number, not a JSON object"),
    "missing elbo": ("evaluation", lambda v: _changed(v, _without("elbo")), 'missing "elbo"'),
    "epoch a string": ("evaluation", lambda v: _changed(v, _set("epoch", "2")),
                       '"epoch" must be an integer, got "2"'),
    "epoch NaN": ("evaluation", lambda v: _changed(v, _set("epoch", math.nan)), '"epoch" must be an integer, got NaN'),
    "epoch a float": ("surgery", lambda v: _changed(v, _set("epoch", 2.0)), '"epoch" must be an integer, got 2.0'),
    "epoch true": ("diagnostics", lambda v: _changed(v, _set("epoch", True)),
                   '"epoch" must be an integer, got true'),
    "iwae a list": ("evaluation", lambda v: _changed(v, _set("iwae", [1, 2])),
                    '"iwae" must be a JSON object, got a list'),
    "iwae key not a number": ("evaluation", lambda v: _changed(v, _set("iwae", {"many": {"mean": 0, "stderr": 0}})),
                              'the keys of "iwae" must be numbers of samples'),
    "iwae entry without stderr": ("evaluation", lambda v: _changed(v, _set("iwae", "5", {"mean": -1.0})),
                                  'missing "iwae.5.stderr"'),
    "mean a string": ("evaluation", lambda v: _changed(v, _set("elbo", "mean", "-80.1")),
                      '"elbo.mean" must be a number (not NaN), got "-80.1"'),
    "mean NaN": ("evaluation", lambda v: _changed(v, _set("log_likelihood", "mean", math.nan)),
                 '"log_likelihood.mean" must be a number (not NaN), got NaN'),
    "num_samples a float": ("evaluation", lambda v: _changed(v, _set("log_likelihood", "num_samples", 20.5)),
                            '"log_likelihood.num_samples" must be an integer, got 20.5'),
    "active_units a string": ("evaluation", lambda v: _changed(v, _set("active_units", "2")),
                              '"active_units" must be a list or null, got "2"'),
    "an active unit not an integer": ("evaluation", lambda v: _changed(v, _set("active_units", ["two"])),
                                      '"active_units[0]" must be an integer, got "two"'),
    "layers disagree": ("evaluation", lambda v: _changed(v, _set("latent_dims", None)),
                        '"active_units" and "latent_dims" must both be null or hold one entry per layer each, got '
                        "1 entries and null"),
    "metrics a number": ("evaluation", lambda v: _changed(v, _set("metrics", 3)),
                         '"metrics" must be a JSON object, got 3'),
    "surgery term missing": ("surgery", lambda v: _changed(v, _without("total_correlation")),
                             'missing "total_correlation"'),
    "surgery term a number": ("surgery", lambda v: _changed(v, _set("elbo", -80.0)),
                              '"elbo" must be a JSON object, got -80.0'),
    "surgery log N null": ("surgery", lambda v: _changed(v, _set("log_num_points", None)),
                           '"log_num_points" must be a number (not NaN), got null'),
    "surgery per-unit KL not numbers": ("surgery", lambda v: _changed(v, _set("dimensionwise_kl_per_unit", [{}])),
                                        '"dimensionwise_kl_per_unit[0]" must be a number (not NaN), got a JSON object'),
    "gradient_snr not a list": ("diagnostics", lambda v: _changed(v, _set("gradient_snr", {"reparam": 1.0})),
                                '"gradient_snr" must be a list, got a JSON object'),
    "gradient_snr row without decoder": ("diagnostics", lambda v: _changed(v, _without("gradient_snr", 1, "decoder")),
                                         'missing "gradient_snr[1].decoder"'),
    "gradient_snr k a string": ("diagnostics", lambda v: _changed(v, _set("gradient_snr", 0, "k", "1")),
                                '"gradient_snr[0].k" must be an integer, got "1"'),
    "num_draws missing": ("diagnostics", lambda v: _changed(v, _without("num_draws")), 'missing "num_draws"'),
    "collapse_warning a number": ("diagnostics", lambda v: _changed(v, _set("collapse_warning", 7)),
                                  '"collapse_warning" must be a string or null, got 7'),
    "a long value is cut": ("diagnostics", lambda v: _changed(v, _set("num_draws", "3\n" * 40)),
                            '"num_draws" must be an integer, got "' + "3\\n" * 12 + '...)'),
    "not JSON": ("evaluation", lambda v: b'{"epoch": 2,', "not JSON (Expecting property name"),
    "not UTF-8": ("surgery", lambda v: b"\xff\xfe\x00{", "not JSON ("),
    "nested too deep": ("diagnostics", lambda v: b"[" * 100_000 + b"]" * 100_000, "not JSON ("),
    "an integer past Python's digits": ("evaluation", lambda v: b'{"epoch": ' + b"9" * 5000 + b"}", "not JSON ("),
}


def _snapshot(path: Path) -> dict:
    """Every file and folder under ``path``: a file's SHA-256, a folder's ``None``."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(path.rglob("*"))}


def _write(path: Path, content) -> None:
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_measurement_file_is_one_line_and_nothing_is_written(case, measured, run, capsys):
    kind, bad, words = BAD_FILES[case]
    file = run / schemas.FILES[kind]
    _write(file, bad(measured[1][kind]))
    before = _snapshot(run)
    assert cli.main(["report", str(run), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"elbo report: error: {file}: "), err
    assert words in err, err
    assert f"`elbo {schemas.COMMANDS[kind]} {run}` writes it anew" in err
    assert ("as does --compute" in err) == (kind != "diagnostics")
    assert _snapshot(run) == before
    assert not (run / "figures").exists() and not (run / "report.html").exists()


def test_the_real_outputs_pass_their_checks(measured):
    """What evaluate_run, surgery_run and diagnose_run return and write passes ``schemas.check``; NaN standard errors
    (a single point) and SNRs (no noise) too; extra keys are allowed; the schema's surgery terms are the module's."""
    path, outputs = measured
    for kind, output in outputs.items():
        file = path / schemas.FILES[kind]
        assert schemas.check(kind, output, file) is output
        written = json.loads(file.read_text())
        assert schemas.check(kind, written, file) == written
        assert schemas.check(kind, {**written, "note": "added by hand"}, file)
    single = copy.deepcopy(outputs["evaluation"])
    single["elbo"]["stderr"] = single["log_likelihood"]["stderr"] = math.nan
    schemas.check("evaluation", single, path / "evaluation.json")
    schemas.check("evaluation", {**single, "active_units": None, "latent_dims": None, "metrics": {"perplexity": 3}},
                  path / "evaluation.json")
    schemas.check("diagnostics", _changed(outputs["diagnostics"], _set("gradient_snr", 0, "encoder", math.nan)),
                  path / "diagnostics.json")
    assert schemas.SURGERY_TERMS == surgery.SURGERY_TERMS


def test_check_names_the_file_and_refuses_an_unknown_kind(measured):
    path = measured[0] / "evaluation.json"
    with pytest.raises(InputError, match=r'evaluation\.json: not the output of `elbo evaluate` \(missing "elbo"\)'):
        schemas.check("evaluation", _changed(measured[1]["evaluation"], _without("elbo")), path)
    with pytest.raises(InputError, match="kind must be one of"):
        schemas.check("metrics", {}, path)


def test_with_compute_a_bad_evaluation_or_surgery_is_computed_anew(run):
    """``compute=True`` replaces an evaluation.json and a surgery.json that fail their checks; the report is made."""
    _write(run / "evaluation.json", {"epoch": "2"})
    _write(run / "surgery.json", [1, 2, 3])
    document = report.write_report(run, compute=True).read_text()
    for kind in ("evaluation", "surgery"):
        file = run / schemas.FILES[kind]
        assert schemas.check(kind, json.loads(file.read_text()), file)["epoch"] == 2
    assert "log p(x) (IWAE-5000)" in document and (run / "figures" / "surgery.png").is_file()


def test_with_compute_a_bad_diagnostics_still_fails_before_anything_is_computed(run):
    """``compute`` does not make diagnostics.json: one that fails is an error, before the missing evaluation is
    computed (and written)."""
    (run / "evaluation.json").unlink()
    _write(run / "diagnostics.json", {"gradient_snr": "high"})
    before = _snapshot(run)
    with pytest.raises(InputError, match=r"diagnostics\.json: not the output of `elbo diagnose`"):
        report.write_report(run, compute=True)
    assert _snapshot(run) == before


def test_a_valid_measurement_of_a_newer_epoch_is_only_flagged(measured, run):
    """An epoch later than the checkpoint's is no schema problem: the stale warning says it."""
    _write(run / "diagnostics.json", {**measured[1]["diagnostics"], "epoch": 7})
    document = report.write_report(run).read_text()
    assert f"Measured at epoch 7, but the checkpoint is now at epoch 2: run `elbo diagnose {run}` again" in document
