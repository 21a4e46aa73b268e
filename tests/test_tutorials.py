"""The tutorials and how-to scripts of the documentation site (docs/tutorials/*.py, docs/how-to/*.py) run, on their
quick path, and print what their pages say they print: the code shown in the site is the code run here (the pages
include these files). The README's Python examples run too."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS, HOW_TO = ROOT / "docs" / "tutorials", ROOT / "docs" / "how-to"


def registries() -> list:
    from elbo import registry
    from elbo.bbvi.config import METHODS

    return [registry.KINDS, registry.DATASETS, registry.LIKELIHOODS, METHODS]


def run_tutorial(name: str, tmp_path: Path, monkeypatch, capsys, folder: Path = TUTORIALS) -> str:
    """Run ``docs/tutorials/NAME.py`` (or ``folder/NAME.py``) in this process with ``ELBO_TUTORIAL_QUICK=1``, in
    ``tmp_path`` (its runs under ``tmp_path/out``), as ``python NAME.py OUT`` would; returns what it printed.
    In-process spares an import of torch per script; torch's default dtype and random state, and the registries (a
    how-to registers a kind, a data set, a likelihood or a method), are put back afterwards."""
    script = folder / f"{name}.py"
    monkeypatch.setenv("ELBO_TUTORIAL_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), str(tmp_path / "out")])
    dtype, rng_state = torch.get_default_dtype(), torch.get_rng_state()
    before = [set(table.names()) for table in registries()]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        torch.set_default_dtype(dtype)
        torch.set_rng_state(rng_state)
        for table, names in zip(registries(), before):
            for name in set(table.names()) - names:
                table.unregister(name)
    return capsys.readouterr().out


def run_tutorial_process(name: str, tmp_path: Path) -> str:
    """Run ``docs/tutorials/NAME.py`` as its own process (a tutorial that starts processes of its own)."""
    env = {**os.environ, "ELBO_TUTORIAL_QUICK": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run([sys.executable, str(TUTORIALS / f"{name}.py"), str(tmp_path / "out")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"docs/tutorials/{name}.py exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def numbers(pattern: str, text: str) -> list[float]:
    """The numbers that ``pattern``'s groups match in the first line it matches."""
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no line matches {pattern!r} in:\n{text}"
    return [float(group) for group in match.groups()]


def test_every_script_has_a_test_and_a_page():
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    for folder, suffix in ((TUTORIALS, "_tutorial"), (HOW_TO, "_how_to")):
        for script in folder.glob("*.py"):
            assert script.stem + suffix in tested, f"{script.relative_to(ROOT)} has no test here"
    for script in TUTORIALS.glob("*.py"):
        page = script.with_suffix(".md").read_text(encoding="utf-8")
        assert f'--8<-- "docs/tutorials/{script.name}"' in page, f"{script.with_suffix('.md')} does not include it"
    pages = "".join(page.read_text(encoding="utf-8") for page in HOW_TO.glob("*.md"))
    for script in HOW_TO.glob("*.py"):
        assert f'--8<-- "docs/how-to/{script.name}"' in pages, f"no how-to page includes {script.name}"


# The eight schools' funnel puts k̂ near 0.7, where elbo.fit warns, as the README and the tutorial say it may.
EIGHT_SCHOOLS_WARNING = "ignore:k̂ ≥ 0.7:UserWarning"


@pytest.mark.filterwarnings(EIGHT_SCHOOLS_WARNING)
def test_the_readme_examples_run(monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 2
    dtype, rng_state = torch.get_default_dtype(), torch.get_rng_state()
    try:
        for block in blocks:
            namespace = {"__name__": "__readme__"}
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (the README's own examples)
    finally:
        torch.set_default_dtype(dtype)
        torch.set_rng_state(rng_state)
    printed = capsys.readouterr().out
    assert "converged" in printed or "stopped" in printed  # elbo.fit's reason


def test_bounds_tutorial(tmp_path, monkeypatch, capsys):
    out = run_tutorial("bounds", tmp_path, monkeypatch, capsys)
    (log_px,) = numbers(r"^log p\(x\) = (-?[\d.]+) \(exact\)", out)
    mc, exact, kl = numbers(r"^fullrank\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)", out)
    assert abs(exact - log_px) < 1e-3 and abs(mc - log_px) < 0.01 and 0 <= kl < 1e-3  # q reaches the posterior
    _, mean_field_exact, mean_field_kl = numbers(r"^meanfield\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)", out)
    assert mean_field_kl > kl and mean_field_exact < exact  # and a mean-field q cannot
    iwae = [numbers(rf"^\s+L_{k}\s+= (-?[\d.]+)", out)[0] for k in (1, 10, 100, 1000)]
    assert iwae[0] < iwae[1] < iwae[2] < iwae[3] < log_px  # L_1 ≤ L_10 ≤ L_100 ≤ L_1000 ≤ log p(x)
    assert abs(iwae[0] - mean_field_exact) < 0.05  # L_1 is the ELBO
    (reparam,), (stl,) = numbers(r"^\s+reparam\s+([\d.e+-]+)", out), numbers(r"^\s+stl\s+([\d.e+-]+)", out)
    assert stl < 1e-12 < reparam  # STL has zero variance at the exact posterior
    dreg = numbers(r"^\s+dreg\s+([\d.e+-]+)", out)[0]
    reparam_iwae = numbers(r"K = 64.*\n\s+reparam\s+([\d.e+-]+)", out)[0]  # near the posterior
    assert dreg < reparam_iwae / 10


def test_images_tutorial(tmp_path, monkeypatch, capsys):
    out = run_tutorial("images", tmp_path, monkeypatch, capsys)
    for name in ("vae", "iwae-5"):
        elbo, log_px, gap = numbers(rf"^{name}\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)", out)
        assert log_px > elbo and gap > 0  # log p(x) by importance sampling lies above the ELBO
        assert (tmp_path / "out" / name / "evaluation.json").is_file()
    again, stderr = numbers(r"^vae log p\(x\) again, from the model and its guide: (-?[\d.]+) ± ([\d.]+)", out)
    assert abs(again - numbers(r"^vae\s+-?[\d.]+\s+(-?[\d.]+)", out)[0]) < 5 * stderr  # new draws, same estimate
    (mi,), (log_n,) = numbers(r"^surgery index_code_mi\s+(-?[\d.]+)", out), numbers(r"^surgery log N\s+([\d.]+)", out)
    assert 0 <= mi <= log_n
    (reconstruction,), (marginal_kl,), (elbo,) = (numbers(rf"^surgery {term}\s+(-?[\d.]+)", out)
                                                  for term in ("reconstruction", "marginal_kl", "elbo"))
    assert abs(reconstruction - mi - marginal_kl - elbo) < 0.5  # the terms add up, within Monte Carlo error


def test_topics_tutorial(tmp_path, monkeypatch, capsys):
    out = run_tutorial("topics", tmp_path, monkeypatch, capsys)
    for name in ("prodlda", "lda"):
        elbo, iwae, npmi, distance = numbers(rf"^{name}\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+([\d.]+)", out)
        assert iwae <= elbo + 0.1  # the importance-sampled perplexity is the tighter bound
        assert -1 <= npmi <= 1 and 0 <= distance <= 1
    assert numbers(r"^lda\s+[\d.]+\s+[\d.]+\s+-?[\d.]+\s+([\d.]+)", out)[0] < 0.5  # LDA finds the true topics


def test_spikes_tutorial(tmp_path, monkeypatch, capsys):
    out = run_tutorial("spikes", tmp_path, monkeypatch, capsys)
    elbo, log_px = numbers(r"^test ELBO (-?[\d.]+) nats per trial, log p\(x\) (-?[\d.]+)", out)
    assert log_px > elbo
    for name in ("bits_per_spike", "co_bps", "rate_r2", "latent_r2"):
        assert numbers(rf"^{name}\s+(-?[\d.]+)", out)
    assert re.search(r"^latents \(16, 50, 3\)", out, re.MULTILINE)
    assert (tmp_path / "out" / "lorenz.npz").is_file()


@pytest.mark.filterwarnings(EIGHT_SCHOOLS_WARNING)
def test_bbvi_tutorial(tmp_path, monkeypatch, capsys):
    out = run_tutorial("bbvi", tmp_path, monkeypatch, capsys)
    for i in range(3):  # the fit's means and sds against the exact posterior's
        q_mean, exact_mean, q_sd, exact_sd = numbers(rf"^w\[{i}\]\s+(-?[\d.]+)\s+(-?[\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
        assert abs(q_mean - exact_mean) < 0.1 * exact_sd and abs(q_sd - exact_sd) < 0.1 * exact_sd
    fitted, exact = numbers(r"^log p\(y\): fit (-?[\d.]+) ± [\d.]+, exact (-?[\d.]+)", out)
    assert abs(fitted - exact) < 0.01
    (khat,) = numbers(r"^eight schools: k̂ = (-?[\d.]+)", out)
    assert khat < 1
    assert numbers(r"smallest draw ([\d.e+-]+) > 0", out)[0] > 0


def test_parallel_tutorial(tmp_path):
    out = run_tutorial_process("parallel", tmp_path)
    (difference,) = numbers(r"1 process against 2: largest parameter difference ([\d.e+-]+)", out)
    assert difference < 1e-9  # two processes compute what one computes, to float64 rounding
    assert numbers(r"^resumed: (\d+) epochs", out) == [2.0]
    assert numbers(r"over (\d+) images", out) == [297.0]


@pytest.mark.parametrize("script", sorted([*TUTORIALS.glob("*.py"), *HOW_TO.glob("*.py")]), ids=lambda path: path.name)
def test_every_script_keeps_its_quick_switch(script):
    assert 'os.environ.get("ELBO_TUTORIAL_QUICK") == "1"' in script.read_text(encoding="utf-8")


def test_own_images_how_to(tmp_path, monkeypatch, capsys):
    out = run_tutorial("own_images", tmp_path, monkeypatch, capsys, HOW_TO)
    pattern = r"^my_images: test ELBO (-?[\d.]+), log p\(x\) (-?[\d.]+) .* (\d+) test images"
    elbo, log_px, num_points = numbers(pattern, out)
    assert log_px > elbo and num_points == 179


def test_own_kind_how_to(tmp_path, monkeypatch, capsys):
    out = run_tutorial("own_kind", tmp_path, monkeypatch, capsys, HOW_TO)
    log_px, sigma = numbers(r"^linear kind: test log p\(x\) (-?[\d.]+) nats per vector, decoder σ ([\d.]+)", out)
    assert -10 < log_px < 0 and 0 < sigma < 2


def test_own_likelihood_how_to(tmp_path, monkeypatch, capsys):
    out = run_tutorial("own_likelihood", tmp_path, monkeypatch, capsys, HOW_TO)
    elbo, log_px = numbers(r"^continuous Bernoulli VAE: test ELBO (-?[\d.]+), log p\(x\) (-?[\d.]+)", out)
    assert log_px > elbo


def test_own_method_how_to(tmp_path, monkeypatch, capsys):
    out = run_tutorial("own_method", tmp_path, monkeypatch, capsys, HOW_TO)
    assert "laplace: the Laplace approximation at the start" in out
    (khat,), (sd_error,) = numbers(r"k̂ = (-?[\d.]+|-inf)", out), numbers(r"relative error of w\[0\]'s sd ([\d.]+)", out)
    assert khat < 0.5 and sd_error < 0.01  # exact for a Gaussian posterior, but for the draws' noise
