"""The HTML report: self-contained, with the numbers of the run's JSON files and every figure it saved; and, in
a real browser (headless Chromium, marked ``browser``), a page that is not blank with no broken image."""

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

from elbo import diagnostics, evaluate, report, surgery, train
from elbo.models.images.config import VAEConfig

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a quiet, isolated headless run: no network chatter, no GPU, a fresh profile per run (--user-data-dir).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A VAE with a 2-D latent space trained for 3 epochs on the bundled digits."""
    path = tmp_path_factory.mktemp("report") / "run"
    config = train.TrainConfig(data="digits", model=VAEConfig(latent_dims=(2,), hidden_dims=((32,),)), epochs=3,
                               batch_size=100)
    return train.train(config, path, progress=False)


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run for one test to write into."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _images(document: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]*)"', document)


def test_report_without_measurements_says_how_to_make_them(run):
    path = report.write_report(run)
    document = path.read_text()
    assert path == run / "report.html"
    assert f"No evaluation.json: run `elbo evaluate {run}`" in document
    assert f"No surgery.json: run `elbo surgery {run}`" in document
    assert f"No diagnostics.json: `elbo diagnose {run}`" in document
    names = [name for name, _ in _images(document)]
    assert names == ["training_curves", "reconstructions", "prior_samples", "latent_traversals", "manifold",
                     "encodings", "kl_per_unit"]
    # digits are binarized dynamically: the figure shows the grey levels the test images were drawn from
    assert "The first 16 test images: grey levels (top), the binary images the model is scored on" in document


def test_report_is_self_contained_and_holds_the_runs_numbers(run):
    """With ``compute``, evaluation.json and surgery.json are made; their numbers are in the tables, every figure is
    embedded byte for byte as saved in figures/, and nothing is fetched from anywhere."""
    diagnostics.diagnose_run(run, num_samples=(1, 3), estimators=("reparam",), num_draws=3, batch_size=20)
    document = report.write_report(run, compute=True).read_text()
    evaluation = json.loads((run / "evaluation.json").read_text())
    surgery = json.loads((run / "surgery.json").read_text())
    snr = json.loads((run / "diagnostics.json").read_text())["gradient_snr"]
    for value in (evaluation["elbo"], evaluation["log_likelihood"], surgery["index_code_mi"], surgery["elbo"],
                  surgery["total_correlation"]):
        assert f"{value['mean']:.3f} ± {value['stderr']:.3f}" in document
    assert f"<td>reparam</td><td class=\"number\">3</td><td class=\"number\">{snr[1]['encoder']:.3f}</td>" in document
    assert "<td>model.latent_dims</td><td class=\"number\">(2,)</td>" in document
    images = _images(document)
    assert [name for name, _ in images][-1] == "surgery" and len(images) == 8
    for name, data in images:
        assert base64.b64decode(data) == (run / "figures" / f"{name}.png").read_bytes()
    assert not re.search(r"<script|<link|<iframe|\b(src|href)=\"(?!data:)|url\(", document)


def test_the_sub_terms_of_the_surgery_table_are_indented(run):
    """Total correlation and dimension-wise KL, the parts of the marginal KL, sit indented under it as in `elbo
    surgery`'s plain text: HTML collapses the labels' leading spaces, so their cells carry a class the style
    indents; every other row's label is a plain cell."""
    surgery.surgery_run(run)
    document = report.write_report(run).read_text()
    assert re.search(r"td\.subterm \{ padding-left: [1-9]", document)
    rows = re.findall(r'<tr><td( class="subterm")?>([^<]*)</td><td class="number">[^<]* ± ', document)
    assert rows == [(' class="subterm"' if label.startswith(" ") else "", label.strip())
                    for label in surgery.SURGERY_LABELS.values()]
    assert [label for indented, label in rows if indented] == ["total correlation", "dimension-wise KL"]


def test_measurements_of_an_earlier_epoch_are_flagged_and_recomputed(run):
    """A surgery.json of another epoch than the checkpoint's is flagged, and replaced with ``compute``; a figure left
    from an earlier report that this run does not make is removed."""
    evaluate.evaluate_run(run, num_samples=10, iwae_samples=())
    measured = surgery.surgery_run(run)
    (run / "surgery.json").write_text(json.dumps({**measured, "epoch": 1}))
    (run / "figures").mkdir()
    (run / "figures" / "old.png").write_bytes(b"")
    document = report.write_report(run).read_text()
    assert f"Measured at epoch 1, but the checkpoint is now at epoch 3: run `elbo surgery {run}` again" in document
    assert "Measured at epoch" not in document.replace("Measured at epoch 1, but", "", 1)  # the evaluation is current
    assert not (run / "figures" / "old.png").exists()
    document = report.write_report(run, compute=True).read_text()
    assert "Measured at epoch" not in document and json.loads((run / "surgery.json").read_text())["epoch"] == 3


def test_a_two_layer_run_gets_the_parts_that_exist_for_it(tmp_path):
    """A hierarchical VAE has no single prior p(z): no surgery, no KL per unit, no decoded figure; the rest is there."""
    config = train.TrainConfig(data="digits", model=VAEConfig(latent_dims=(3, 2), hidden_dims=((16,), (8,))),
                               epochs=1, batch_size=100)
    path = train.train(config, tmp_path / "run", progress=False)
    evaluate.evaluate_run(path, num_samples=10, iwae_samples=())
    document = report.write_report(path, compute=True).read_text()
    # no surgery section (nor advice to run `elbo surgery`, which refuses this model)
    assert "ELBO surgery" not in document and "elbo surgery" not in document and not (path / "surgery.json").exists()
    assert "log p(x) (IWAE-10)" in document and "latent units active" in document
    assert [name for name, _ in _images(document)] == ["training_curves"]


SCRIPT = """<img id="control" alt="control" src="data:image/png;base64,AAAA">
<script>window.addEventListener("load", () => { for (const image of document.images)
  image.setAttribute("data-natural-width", image.complete ? image.naturalWidth : -1); });</script>"""


def _chromium(profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium); "
                    f"deselect with -m 'not browser'")
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.browser
def test_the_report_renders_in_chromium(run, tmp_path):
    """A screenshot of the page is not blank; and in the DOM after loading, every image of the report decoded to a
    positive natural width (a control image with a corrupt PNG, added to a copy of the page, reads 0)."""
    page = report.write_report(run, compute=True)
    screenshot = tmp_path / "screenshot.png"
    _chromium(tmp_path / "profile-1", f"--screenshot={screenshot}", "--window-size=1000,2000", page.as_uri())
    pixels = matplotlib.image.imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (2000, 1000)
    dark = (pixels.mean(-1) < 0.5).mean()
    assert 0.01 < dark < 0.9 and pixels.std() > 0.05, f"a blank-looking screenshot: {dark:.3%} dark pixels"
    marked = tmp_path / "marked.html"
    marked.write_text(page.read_text().replace("</body>", SCRIPT + "</body>"))
    dom = _chromium(tmp_path / "profile-2", "--virtual-time-budget=10000", "--dump-dom", marked.as_uri()).stdout
    widths = dict(re.findall(r'<img alt="([^"]*)" [^>]*data-natural-width="(-?\d+)"', dom) +
                  re.findall(r'<img id="control" alt="([^"]*)" [^>]*data-natural-width="(-?\d+)"', dom))
    names = [name for name, _ in _images(page.read_text())]
    assert set(widths) == {*names, "control"} and len(names) == 8, widths
    assert widths.pop("control") == "0"
    assert all(int(width) > 0 for width in widths.values()), widths


def test_a_table_aligns_numbers_right_and_words_left():
    """The ladder's "what it means" column and a configuration's words read left to right; numbers, estimates with
    their standard error and brackets line up on the right."""
    table = report._table(("quantity", "value", "what it means"),
                          [("ELBO", "-22.86 ± 0.23", "log p(x) − KL(q ‖ p)"), ("KL", "[0.1, 0.4]", "bracketed"),
                           ("estimator", "stl", "−0.5 nats")])
    assert '<td class="number">-22.86 ± 0.23</td>' in table and '<td class="number">[0.1, 0.4]</td>' in table
    assert "<td>log p(x) − KL(q ‖ p)</td>" in table and "<td>stl</td>" in table and "<td>bracketed</td>" in table
    assert '<td class="number">−0.5 nats</td>' in table
