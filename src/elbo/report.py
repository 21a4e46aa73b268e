"""The HTML report of a run directory of any kind: one self-contained ``report.html`` (figures embedded as base64
PNG, no script, no external file), with the figures also saved as ``figures/*.png`` beside it.

It holds the tables of ``evaluation.json`` (``elbo evaluate``), ``surgery.json`` (``elbo surgery``) and
``diagnostics.json`` (``elbo diagnose``) where they exist (``compute=True`` computes the first two where they are
missing, stale or fail their check), the KL of each latent unit and the collapse warning (always computed: one pass
over the test set), the figures of ``elbo.plots`` and those of the run's model kind (its ``figures`` hook), and the
run's configuration.

Every measurement file the report reads is checked against its schema (``elbo.schemas``) before anything is
written: a file that is not JSON, or JSON of another shape, is one ``InputError`` naming it, and the run directory
is left as it was (no ``figures/``, no ``report.html``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from . import plots, schemas
from ._checks import check_device
from ._files import write_atomically
from .diagnostics import KL_THRESHOLD, kl_per_dimension, posterior_collapse
from .errors import InputError
from .evaluate import ACTIVITY_THRESHOLD, evaluate_run, latent_activity
from .kinds import kind_of
from .protocols import ConjugateUpdates, LatentLayers, one_gaussian_layer
from .runs import Run, load_run, locked
from .surgery import SURGERY_LABELS, surgery_run

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


def _read_json(path: Path):
    """The content of JSON file ``path``, or ``None`` when there is none."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, an integer past Python's digits, too deep
        raise InputError(f"{path}: not JSON ({str(error).splitlines()[0]})") from None


def _read_measurement(path: Path, kind: str) -> dict | None:
    """The ``kind`` measurement file of run directory ``path`` (``schemas.FILES``), checked against its schema;
    ``None`` when there is none."""
    file = path / schemas.FILES[kind]
    if not file.is_file():
        return None
    try:
        value = _read_json(file)
    except InputError as error:
        raise InputError(f"{error}; {schemas.remedy(kind, file)}") from None
    return schemas.check(kind, value, file)  # a file holding `null` too: it is no measurement


def _estimate(value: dict) -> str:
    return f"{value['mean']:.3f} ± {_number(value['stderr'])}"


def _metric_rows(metrics: dict) -> list:
    """The kind's own measures, to 6 significant digits, each ``NAME`` with its ``NAME_stderr`` beside it."""
    def text(value):
        return "—" if value is None or value != value else f"{value:.6g}"

    return [(name, text(value) + (f" ± {text(metrics[name + '_stderr'])}" if name + "_stderr" in metrics else ""))
            for name, value in metrics.items() if not (name.endswith("_stderr") and name[:-7] in metrics)]


def _number(value, digits: int = 3) -> str:
    """``value`` to ``digits`` decimals; "—" for an undefined one (``null`` in the JSON: one point's standard error,
    a gradient with no noise to measure)."""
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def _label(text) -> str:
    """A row's first cell. Leading spaces mark a sub-term of the row above, as the plain-text tables indent it
    (``SURGERY_LABELS``); HTML would collapse them, so they become the ``subterm`` class, indented by the style."""
    text = str(text)
    if text.startswith(" "):
        return f'<td class="subterm">{html.escape(text.lstrip())}</td>'
    return f"<td>{html.escape(text)}</td>"


def _table(header, rows) -> str:
    """An HTML table: the first column a label, the others right-aligned where they read as numbers (a sign, a digit
    or a bracket first: "-22.86 ± 0.23", "[0.1, 0.4]") and left-aligned where they are words."""
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) if i else _label(c) for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _cell(value) -> str:
    text = html.escape(str(value))
    return f'<td class="number">{text}</td>' if re.match(r"\s*[-+−\[(]?\s*[\d.]", str(value)) else f"<td>{text}</td>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _warning(text: str) -> str:
    return f'<p class="warning">{html.escape(text)}</p>'


def _stale(measurement: dict, epoch: int, remedy: str) -> str:
    """A warning when ``measurement`` (the content of a JSON file) was made at another epoch than the checkpoint's."""
    if measurement["epoch"] == epoch:
        return ""
    return _warning(f"Measured at epoch {measurement['epoch']}, but the checkpoint is now at epoch {epoch}: {remedy}.")


def _evaluation_section(evaluation: dict | None, path: Path, epoch: int, unit: str) -> str:
    if evaluation is None:
        return _note(f"No evaluation.json: run `elbo evaluate {path}` (or `elbo report {path} --compute`).")
    remedy = f"run `elbo evaluate {path}` again (or `elbo report {path} --compute`)"
    rows = [("ELBO", _estimate(evaluation["elbo"]))]
    rows += [(f"IWAE-{k}", _estimate(v)) for k, v in evaluation["iwae"].items()]
    rows += [(f"log p(x) (IWAE-{evaluation['log_likelihood']['num_samples']})",
              _estimate(evaluation["log_likelihood"])),
             ("active units", active_units_text(evaluation))]
    rows += _metric_rows(evaluation.get("metrics", {}))
    return (_stale(evaluation, epoch, remedy)
            + _note(f"{evaluation['data']} test set, {evaluation['num_points']} {unit}s, epoch {evaluation['epoch']}; "
                    f"nats per {unit}, mean ± standard error.") + _table(("quantity", "value"), rows))


def active_units_text(evaluation: dict) -> str:
    """``"a of d"`` for each stochastic layer, or why active units were not counted."""
    if evaluation["active_units"] is None:
        return "not counted: q's latent is not a vector"
    return ", ".join(f"{a} of {d}" for a, d in zip(evaluation["active_units"], evaluation["latent_dims"]))


# --- the ladder of bounds on log p(x) (evaluation.json's "ais" and "bdmc", written by `elbo evaluate --ais/--bdmc`) ---

def ladder_rows(evaluation: dict) -> list:
    """``(quantity, value, what it means)`` for the ladder ``ELBO ≤ IWAE-K ≤ AIS ≤ log p(x)`` on the test set and
    ``ELBO ≤ IWAE-K ≤ AIS ≤ log p(x) ≤ BDMC upper`` on simulated points, with the gaps between the rungs and the
    bracket on ``KL(q(z|x) ‖ p(z|x))``; no rows when the evaluation has neither."""
    rows = []
    if "ais" in evaluation:
        ais, likelihood = evaluation["ais"], evaluation["log_likelihood"]
        rows += [(f"test set, {evaluation['num_points']} points", "", ""),
                 (" ELBO", _estimate(evaluation["elbo"]), "log p(x) − KL(q ‖ p)"),
                 (f" IWAE-{likelihood['num_samples']}", _estimate(likelihood), "importance sampling with q(z|x)"),
                 (f" AIS-{ais['num_steps']}", _estimate(ais), _ais_run(ais)
                  + f"; Monte Carlo error of the mean ± {_number(ais['mc_stderr'])}, ESS {ais['ess']:.1f} of "
                  f"{ais['num_chains']}"),
                 (f" AIS − IWAE-{likelihood['num_samples']}", _estimate(ais["minus_log_likelihood"]),
                  "the importance-sampling gap: what IWAE misses of log p(x), at least"),
                 (" KL(q ‖ p) ≥ AIS − ELBO", _estimate(ais["minus_elbo"]), "the inference gap, bounded from below")]
    if "bdmc" in evaluation:
        bdmc = evaluation["bdmc"]
        rows += [(f"simulated from the model, {bdmc['num_points']} points", "", ""),
                 (" ELBO", _estimate(bdmc["elbo"]), "log p(x) − KL(q ‖ p)"),
                 (f" IWAE-{bdmc['num_samples']}", _estimate(bdmc["iwae"]), "importance sampling with q(z|x)"),
                 (f" AIS-{bdmc['num_steps']}", _estimate(bdmc["lower"]), _ais_run(bdmc) + "; ≤ log p(x)"),
                 (" BDMC upper", _estimate(bdmc["upper"]), "reverse chains from the true z; ≥ log p(x)"),
                 (" BDMC upper − AIS", _estimate(bdmc["gap"]),
                  "the schedule's gap: bounds the error of either bound; more steps close it"),
                 (" KL(q ‖ p)", f"[{_estimate(bdmc['kl_lower'])}, {_estimate(bdmc['kl_upper'])}]",
                  "the inference gap, bracketed: [AIS − ELBO, upper − ELBO]")]
    return rows


def _ais_run(ais: dict) -> str:
    start = "q(z|x)" if ais["start"] == "guide" else "the prior"
    return f"{ais['num_chains']} chains from {start}, {ais['num_steps']} HMC steps"


def ladder_lines(evaluation: dict) -> list:
    """``ladder_rows`` as lines of text, for ``elbo evaluate``'s table."""
    return [f"{name:<38} {value:>22}  {meaning}".rstrip() if value else name
            for name, value, meaning in ladder_rows(evaluation)]


def _ladder_section(evaluation: dict | None, unit: str) -> str:
    rows = ladder_rows(evaluation or {})
    if not rows:
        return ""
    return ("<h2>Bounds on log p(x)</h2>\n"
            + _note(f"Nats per {unit}, mean ± standard error over the points. AIS (annealed importance sampling) "
                    f"and BDMC (bidirectional Monte Carlo) bound log p(x) from below and, on data simulated from the "
                    f"model, from above; the bounds hold in expectation.")
            + _table(("quantity", "value", "what it means"), rows))


def _surgery_section(surgery: dict | None, path: Path, epoch: int) -> str:
    """The ELBO surgery's heading and table (a model with one Gaussian stochastic layer: for any other the report has
    no such section, and gives no advice to run it)."""
    heading = "<h2>ELBO surgery</h2>\n"
    if surgery is None:
        return heading + _note(f"No surgery.json: run `elbo surgery {path}` (or `elbo report {path} --compute`).")
    remedy = f"run `elbo surgery {path}` again (or `elbo report {path} --compute`)"
    rows = [(label, _estimate(surgery[name])) for name, label in SURGERY_LABELS.items()]
    return (heading + _stale(surgery, epoch, remedy)
            + _note(f"{surgery['data']} {surgery['split']} set, epoch {surgery['epoch']}, N = "
                    f"{surgery['num_points']} points, {surgery['num_samples']} draw(s) of z per point; total "
                    f"correlation and dimension-wise KL from {surgery['dimension_samples']} draws; log N = "
                    f"{surgery['log_num_points']:.3f}. ELBO = reconstruction − MI − marginal KL; marginal KL = total "
                    f"correlation + dimension-wise KL. Nats per data point, mean ± standard error "
                    f"({surgery['standard_errors']}).")
            + _table(("term", "value"), rows))


def _collapse(kl, activity) -> str | None:
    """``posterior_collapse``'s warning, where the units can be counted (``activity`` a vector)."""
    return None if activity is None else posterior_collapse(kl, activity)


def _diagnostics_section(warning: str | None, activity, kl, diagnostics: dict | None, path: Path, epoch: int,
                         unit: str, gradients: bool = True) -> str:
    """The collapse check and the units' activity (``None``: q's latent is not a vector, nothing counted), and the
    gradient SNR of ``diagnostics.json`` (no advice to measure it for a model without ``gradients``)."""
    if activity is None:
        parts = [_note("Active units and posterior collapse not counted: q's latent is not a vector of units.")]
    else:
        parts = [_warning(warning) if warning else
                 _note(f"No posterior collapse: some unit has a KL of {KL_THRESHOLD} nats or more, and at most half "
                       f"the units are inactive.")]
        active = int((activity > ACTIVITY_THRESHOLD).sum())
        summary = f"{active} of {len(activity)} latent units active (Cov_x E_q[z_j] > {ACTIVITY_THRESHOLD}, test set)"
        if kl is not None:
            summary += f"; KL(q(z|x) ‖ p(z)) = {float(kl.sum()):.3f} nats per {unit}, summed over the units"
        parts.append(_note(summary + "."))
    if diagnostics is None:
        if gradients:  # a model fitted by closed-form steps has no gradient to measure
            parts.append(_note(f"No diagnostics.json: `elbo diagnose {path}` measures the gradient signal-to-noise "
                               f"ratio."))
    else:
        parts.append(_stale(diagnostics, epoch, f"run `elbo diagnose {path}` again"))
        rows = [(row["estimator"], row["k"], _number(row["encoder"]), _number(row["decoder"]))
                for row in diagnostics["gradient_snr"]]
        parts.append(_note(f"Gradient signal-to-noise ratio |E g| / std g (Rainforth et al. 2018), averaged over each "
                           f"network's parameters; {diagnostics['num_draws']} draws on a batch of "
                           f"{diagnostics['snr_batch_size']} training {unit}s."))
        parts.append(_table(("estimator", "K", "encoder SNR", "decoder SNR"), rows))
    return "".join(parts)


def _figures(run: Run, test, labels, kl, activity, surgery: dict | None) -> tuple[list, list]:
    """``(name, caption, Figure)`` for every figure this run allows, and notes on those it does not: the training
    curves, the kind's own figures, the KL of each unit and the surgery. ``test`` is the scored test split on the
    model's device, ``labels`` its labels or ``None``."""
    made, skipped = [], []
    if run.metrics:
        validated = any("val_bound" in record for record in run.metrics)
        caption = ("Training and validation bound per epoch" if validated else
                   "Training bound per epoch (no validation set: the run held none out; --val-size N holds some "
                   "out)") + (
            "; dashed, the training ELBO of the same draws." if run.config.objective == "iwae" else ".")
        made.append(("training_curves", caption, plots.training_curves(run.metrics, unit=run.unit)))
    kind_figures = kind_of(run.config.model).call("figures", run, test, labels, kl) or ([], [])
    made += kind_figures[0]
    skipped += kind_figures[1]
    if kl is None:
        skipped.append("KL per unit needs a model with one Gaussian stochastic layer.")
        return made, skipped
    made.append(("kl_per_unit", "KL of each latent unit (test set); inactive units in grey.",
                 plots.kl_bars(kl, activity)))
    if surgery is not None:
        made.append(("surgery", "The ELBO taken apart (Hoffman & Johnson 2016; Chen et al. 2018).",
                     plots.surgery_terms(surgery)))
    return made, skipped


def _figure_blocks(path: Path, figures: list) -> list:
    """The figures as ``<figure>`` blocks, each also written to ``path/figures/NAME.png``; a PNG of an earlier
    report that this one has not is removed."""
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
    return blocks


_GRADIENT_SETTINGS = ("objective", "num_samples", "estimator", "lr", "schedule", "adam_betas", "adam_eps", "compile")


def _config_rows(run: Run) -> list:
    """The run's settings; a model config's ``unused`` fields (settings of another model of its kind) left out."""
    config = run.config.to_dict()
    unused = getattr(run.config.model, "unused", ())
    if isinstance(run.model, ConjugateUpdates):  # no gradient step: none of its settings were used
        for name in _GRADIENT_SETTINGS:
            config.pop(name)
    rows = [(f"model.{k}", v) for k, v in config.pop("model").items() if k not in unused] + \
        [(f"data_options.{k}", v) for k, v in (config.pop("data_options") or {}).items()] + list(config.items())
    return [(key, "—" if value is None else value) for key, value in rows]


def _summary(run: Run) -> str:
    config, last = run.config, run.metrics[-1] if run.metrics else None
    latent = f", latent dims {run.model.latent_dims}" if isinstance(run.model, LatentLayers) else ""
    fitted = (f"The ELBO by {type(run.model).__name__}'s closed-form steps" if isinstance(run.model, ConjugateUpdates)
              else f"{config.objective.upper()} (K = {config.num_samples}, {config.estimator})")
    return (f"{fitted} on {config.data}{latent}, "
            f"epoch {run.epoch} of {config.epochs}"
            + (f"; last training bound {last['train_bound']:.3f} nats per {run.unit}" if last
               else "; no epoch finished yet") + ".")


COMPUTED = ("evaluation", "surgery")  # the measurements that compute=True makes


def _inputs(run: Run, path: Path, compute: bool) -> dict:
    """The measurement files the report reads, each checked (``_read_measurement``): ``evaluation``, ``surgery``
    (only for a model with one Gaussian layer; ``None`` otherwise) and ``diagnostics``, ``None`` where missing.
    With ``compute``, an evaluation or surgery file that fails its check is ``None`` too, to be computed anew."""
    kinds = ("evaluation", "surgery", "diagnostics") if one_gaussian_layer(run.model) else ("evaluation", "diagnostics")
    found = {"surgery": None}
    for kind in kinds:
        try:
            found[kind] = _read_measurement(path, kind)
        except InputError as error:
            if kind not in COMPUTED:
                raise
            if not compute:
                raise InputError(f"{error}, as does compute=True") from None
            found[kind] = None
    return found


def _measurements(run: Run, path: Path, found: dict, compute: bool, **options) -> tuple[dict | None, dict | None]:
    """``evaluation.json`` and ``surgery.json`` as ``found`` (``_inputs``), computed with their defaults where
    missing, stale or invalid and asked."""
    evaluation, surgery = found["evaluation"], found["surgery"]
    if compute and (evaluation is None or evaluation["epoch"] != run.epoch):
        evaluation = evaluate_run(path, **options)
    if compute and (surgery is None or surgery["epoch"] != run.epoch) and one_gaussian_layer(run.model):
        surgery = surgery_run(path, **options)
    return evaluation, surgery


def write_report(path, *, compute: bool = False, data_dir=None, device="cpu", seed: int = 0,
                 progress: bool = False) -> Path:
    """Write ``path/report.html`` (and ``path/figures/*.png``) for run directory ``path``; returns the report's
    path. ``compute``: run ``evaluate_run`` and ``surgery_run`` with their defaults where their JSON is missing,
    older than the checkpoint, or fails its check (``elbo.schemas``: not JSON, or JSON of another shape).

    Every measurement file is read and checked before anything is computed or written. Without ``compute``, one
    that fails is an ``InputError`` naming it and the command that writes it anew, and the run directory is left as
    it was; so is a ``diagnostics.json`` that fails, with or without ``compute`` (which does not make it)."""
    check_device(device)
    with locked(path):
        return _write_report(Path(path), compute=compute, data_dir=data_dir, device=device, seed=seed,
                             progress=progress)


def _write_report(path: Path, *, compute: bool, data_dir, device, seed: int, progress: bool) -> Path:
    run = load_run(path, data_dir=data_dir, device=device)
    found = _inputs(run, path, compute)
    evaluation, surgery = _measurements(run, path, found, compute, data_dir=data_dir, device=device, seed=seed,
                                        progress=progress)
    test, labels = run.data.scored("test")
    test = test.to(device)
    activity = latent_activity(run.model, run.model.guide, test)
    activity = activity if activity.dim() == 1 else None  # q's latent is not a vector (a trajectory): not counted
    kl = kl_per_dimension(run.model, run.model.guide, test) if one_gaussian_layer(run.model) else None
    figures, skipped = _figures(run, test, labels, kl, activity, surgery)
    blocks = _figure_blocks(path, figures) + [_note(text) for text in skipped]
    sections = "".join(f"<h2>{html.escape(heading)}</h2>\n{body}\n"
                       for heading, body in kind_of(run.config.model).call("sections", run, test) or [])
    title = f"elbo report: {path.name}"
    document = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(_summary(run))} Run directory: <code>{html.escape(str(path))}</code>.</p>
<h2>Evaluation</h2>
{_evaluation_section(evaluation, path, run.epoch, run.unit)}
{_ladder_section(evaluation, run.unit)}
{_surgery_section(surgery, path, run.epoch) if one_gaussian_layer(run.model) else ""}<h2>Diagnostics</h2>
{_diagnostics_section(_collapse(kl, activity), activity, kl, found["diagnostics"], path, run.epoch, run.unit,
                      not isinstance(run.model, ConjugateUpdates))}
{sections}<h2>Figures</h2>
{"".join(blocks)}
<h2>Configuration</h2>
{_table(("setting", "value"), _config_rows(run))}
</body>
</html>
"""
    write_atomically(path / "report.html", document.encode())
    return path / "report.html"
