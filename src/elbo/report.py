"""The HTML report of a run directory: one self-contained ``report.html`` (figures embedded as base64 PNG, no
script, no external file), with the figures also saved as ``figures/*.png`` beside it.

It holds the tables of ``evaluation.json`` (``elbo evaluate``), ``surgery.json`` (``elbo surgery``) and
``diagnostics.json`` (``elbo diagnose``) where they exist (``compute=True`` computes the first two when they do
not), the KL of each latent unit and the collapse warning (always computed: one pass over the test set), the
figures of ``elbo.plots``, and the run's configuration.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import torch

from . import plots
from ._files import write_atomically
from .data import scored_split
from .diagnostics import KL_THRESHOLD, kl_per_dimension, posterior_collapse
from .evaluate import ACTIVITY_THRESHOLD, SURGERY_LABELS, evaluate_run, latent_activity, surgery_run

__all__ = ["write_report", "png"]

STYLE = """
body { font-family: sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.subterm { padding-left: 2.4em; }
figure { margin: 1em 0 2em; }
img { max-width: 100%; }
.warning { background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.5em 1em; }
.note { color: #666; }
"""


def png(figure) -> bytes:
    """The figure rendered as PNG (Agg, 100 dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None


def _estimate(value: dict) -> str:
    return f"{value['mean']:.3f} ± {value['stderr']:.3f}"


def _label(text) -> str:
    """A row's first cell. Leading spaces mark a sub-term of the row above, as the plain-text tables indent it
    (``SURGERY_LABELS``); HTML would collapse them, so they become the ``subterm`` class, indented by the style."""
    text = str(text)
    if text.startswith(" "):
        return f'<td class="subterm">{html.escape(text.lstrip())}</td>'
    return f"<td>{html.escape(text)}</td>"


def _table(header, rows) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="number">{html.escape(str(c))}</td>' if i else _label(c)
                                    for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _warning(text: str) -> str:
    return f'<p class="warning">{html.escape(text)}</p>'


def _stale(measurement: dict, epoch: int, remedy: str) -> str:
    """A warning when ``measurement`` (the content of a JSON file) was made at another epoch than the checkpoint's."""
    if measurement["epoch"] == epoch:
        return ""
    return _warning(f"Measured at epoch {measurement['epoch']}, but the checkpoint is now at epoch {epoch}: {remedy}.")


def _evaluation_section(evaluation: dict | None, path: Path, epoch: int) -> str:
    if evaluation is None:
        return _note(f"No evaluation.json: run `elbo evaluate {path}` (or `elbo report {path} --compute`).")
    remedy = f"run `elbo evaluate {path}` again (or `elbo report {path} --compute`)"
    rows = [("ELBO", _estimate(evaluation["elbo"]))]
    rows += [(f"IWAE-{k}", _estimate(v)) for k, v in evaluation["iwae"].items()]
    rows += [(f"log p(x) (IWAE-{evaluation['log_likelihood']['num_samples']})",
              _estimate(evaluation["log_likelihood"])),
             ("active units", ", ".join(f"{a} of {d}" for a, d in zip(evaluation["active_units"],
                                                                        evaluation["latent_dims"])))]
    return (_stale(evaluation, epoch, remedy)
            + _note(f"{evaluation['data']} test set, {evaluation['num_images']} images, epoch {evaluation['epoch']}; "
                    f"nats per image, mean ± standard error.") + _table(("quantity", "value"), rows))


def _surgery_section(surgery: dict | None, path: Path, epoch: int, one_layer: bool) -> str:
    if not one_layer:
        return _note("ELBO surgery needs a model with one stochastic layer (a prior p(z) and a likelihood p(x|z)).")
    if surgery is None:
        return _note(f"No surgery.json: run `elbo surgery {path}` (or `elbo report {path} --compute`).")
    remedy = f"run `elbo surgery {path}` again (or `elbo report {path} --compute`)"
    rows = [(label, _estimate(surgery[name])) for name, label in SURGERY_LABELS.items()]
    return (_stale(surgery, epoch, remedy)
            + _note(f"{surgery['data']} {surgery['split']} set, epoch {surgery['epoch']}, N = "
                    f"{surgery['num_points']} points, {surgery['num_samples']} draw(s) of z per point; total "
                    f"correlation and dimension-wise KL from {surgery['dimension_samples']} draws; log N = "
                    f"{surgery['log_num_points']:.3f}. ELBO = reconstruction − MI − marginal KL; marginal KL = total "
                    f"correlation + dimension-wise KL. Nats per data point, mean ± standard error "
                    f"({surgery['standard_errors']}).")
            + _table(("term", "value"), rows))


def _diagnostics_section(warning: str | None, activity, kl, diagnostics: dict | None, path: Path, epoch: int) -> str:
    parts = [_warning(warning) if warning else
             _note(f"No posterior collapse: some unit has a KL of {KL_THRESHOLD} nats or more, and at most half the "
                   f"units are inactive.")]
    active = int((activity > ACTIVITY_THRESHOLD).sum())
    summary = f"{active} of {len(activity)} latent units active (Cov_x E_q[z_j] > {ACTIVITY_THRESHOLD}, test set)"
    if kl is not None:
        summary += f"; KL(q(z|x) ‖ p(z)) = {float(kl.sum()):.3f} nats per image, summed over the units"
    parts.append(_note(summary + "."))
    if diagnostics is None:
        parts.append(_note(f"No diagnostics.json: `elbo diagnose {path}` measures the gradient signal-to-noise ratio."))
    else:
        parts.append(_stale(diagnostics, epoch, f"run `elbo diagnose {path}` again"))
        rows = [(row["estimator"], row["k"], f"{row['encoder']:.3f}", f"{row['decoder']:.3f}")
                for row in diagnostics["gradient_snr"]]
        parts.append(_note(f"Gradient signal-to-noise ratio |E g| / std g (Rainforth et al. 2018), averaged over each "
                           f"network's parameters; {diagnostics['num_draws']} draws on a batch of "
                           f"{diagnostics['snr_batch_size']} training images."))
        parts.append(_table(("estimator", "K", "encoder SNR", "decoder SNR"), rows))
    return "".join(parts)


def _figures(run, test, labels, kl, activity, surgery: dict | None) -> tuple[list, list]:
    """``(name, caption, Figure)`` for every figure this run allows, and notes on those it does not; ``test`` is the
    scored test split on the model's device, ``labels`` its labels or ``None``."""
    model, shape = run.model, run.config.model.image_shape
    made, skipped = [], []
    if run.metrics:
        caption = "Training and validation bound per epoch" + (
            "; dashed, the training ELBO of the same draws." if run.config.objective == "iwae" else ".")
        made.append(("training_curves", caption, plots.training_curves(run.metrics)))
    if not hasattr(model, "prior"):
        skipped.append("Reconstructions, samples, traversals and KL per unit need a model with one stochastic layer.")
        return made, skipped
    x, grey = test[:16], None if run.data.test_grey is None else run.data.test_grey[:16].to(test)
    caption = (f"The first {len(x)} test images (top) and the mean of p(x|z) at their posterior mean (bottom)."
               if grey is None else
               f"The first {len(x)} test images: grey levels (top), the binary images the model is scored on (drawn "
               f"once with a fixed seed), and the mean of p(x|z) at their posterior mean.")
    made.append(("reconstructions", caption,
                 plots.reconstructions(model, x, grey=grey, image_shape=shape, columns=len(x))))
    made.append(("prior_samples", "The mean of p(x|z) for z drawn from the prior.",
                 plots.prior_samples(model, image_shape=shape)))
    units = torch.argsort(kl, descending=True)[:8].tolist()
    made.append(("latent_traversals", "The first test image's posterior mean with one unit moved from -3 to 3 (the "
                                      "units with the most KL, one per row).",
                 plots.latent_traversals(model, test[:1], image_shape=shape, units=units)))
    if run.config.model.latent_dims == (2,):
        made.append(("manifold", "The learned manifold (Kingma & Welling 2013, figure 4).",
                     plots.manifold(model, image_shape=shape)))
        made.append(("encodings", "Posterior means of the test images, coloured by label.",
                     plots.encodings(model, test, labels)))
    made.append(("kl_per_unit", "KL of each latent unit (test set); inactive units in grey.",
                 plots.kl_bars(kl, activity)))
    if surgery is not None:
        made.append(("surgery", "The ELBO taken apart (Hoffman & Johnson 2016; Chen et al. 2018).",
                     plots.surgery_terms(surgery)))
    return made, skipped


def write_report(path, *, compute: bool = False, data_dir=None, device="cpu", seed: int = 0,
                 progress: bool = False) -> Path:
    """Write ``path/report.html`` (and ``path/figures/*.png``) for run directory ``path``; returns the report's
    path. ``compute``: run ``evaluate_run`` and ``surgery_run`` with their defaults where their JSON is missing."""
    from .train import load_run  # train imports evaluate, which plots imports

    path = Path(path)
    run = load_run(path, data_dir=data_dir, device=device)
    evaluation, surgery = _read_json(path / "evaluation.json"), _read_json(path / "surgery.json")
    if compute and (evaluation is None or evaluation["epoch"] != run.epoch):
        evaluation = evaluate_run(path, data_dir=data_dir, device=device, seed=seed, progress=progress)
    if compute and (surgery is None or surgery["epoch"] != run.epoch) and hasattr(run.model, "prior"):
        surgery = surgery_run(path, data_dir=data_dir, device=device, seed=seed, progress=progress)
    test, labels = scored_split(run.data, "test")
    test = test.to(device)
    activity = latent_activity(run.model, run.model.guide, test)
    kl = kl_per_dimension(run.model, run.model.guide, test) if hasattr(run.model, "prior") else None
    warning = posterior_collapse(kl, activity)
    figures, skipped = _figures(run, test, labels, kl, activity, surgery)

    (path / "figures").mkdir(exist_ok=True)
    blocks = []
    for name, caption, figure in figures:
        image = png(figure)
        write_atomically(path / "figures" / f"{name}.png", image)
        blocks.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
                      f'{base64.b64encode(image).decode()}"><figcaption>{html.escape(caption)}</figcaption></figure>')
    written = {f"{name}.png" for name, _, _ in figures}
    for old in (path / "figures").glob("*.png"):
        if old.name not in written:
            old.unlink()  # a figure of an earlier report that this run no longer has (the run was replaced)
    blocks += [_note(text) for text in skipped]
    config = run.config.to_dict()
    config_rows = [(f"model.{k}", v) for k, v in config.pop("model").items()] + list(config.items())
    config_rows = [(key, "—" if value is None else value) for key, value in config_rows]
    title = f"elbo report: {path.name}"
    last = run.metrics[-1] if run.metrics else None
    summary = (f"{run.config.objective.upper()} (K = {run.config.num_samples}, {run.config.estimator}) on "
               f"{run.config.data}, latent dims {run.config.model.latent_dims}, epoch {run.epoch} of "
               f"{run.config.epochs}" + (f"; last training bound {last['train_bound']:.3f} nats per image" if last
                                        else "; no epoch finished yet") + ".")
    document = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(summary)} Run directory: <code>{html.escape(str(path))}</code>.</p>
<h2>Evaluation</h2>
{_evaluation_section(evaluation, path, run.epoch)}
<h2>ELBO surgery</h2>
{_surgery_section(surgery, path, run.epoch, hasattr(run.model, "prior"))}
<h2>Diagnostics</h2>
{_diagnostics_section(warning, activity, kl, _read_json(path / "diagnostics.json"), path, run.epoch)}
<h2>Figures</h2>
{"".join(blocks)}
<h2>Configuration</h2>
{_table(("setting", "value"), config_rows)}
</body>
</html>
"""
    write_atomically(path / "report.html", document.encode())
    return path / "report.html"
