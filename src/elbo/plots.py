"""Figures of any trained amortized model, each a ``matplotlib.figure.Figure``; a model kind adds its own (the
images kind's are in ``elbo.models.images.figures``).

The figures are built on ``Figure`` objects directly, never through ``pyplot``: nothing is registered globally,
no window or backend is chosen, and nothing needs closing; ``figure.savefig(...)`` renders with Agg.

- ``training_curves``: the training and validation bound per epoch (``metrics.jsonl``);
- ``kl_bars``: ``E_n KL(q(z_j|x_n) ‖ p(z_j))`` per unit; ``surgery_terms``: the terms of ``elbo_surgery``.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from .errors import InputError
from .evaluate import ACTIVITY_THRESHOLD
from .surgery import SURGERY_LABELS

__all__ = ["training_curves", "kl_bars", "surgery_terms"]


def training_curves(metrics: list[dict], *, unit: str = "data point") -> Figure:
    """``train_bound`` and, where present, ``val_bound`` against ``epoch``, in nats per ``unit``; and the training
    ELBO (``elbo``) where it is not the bound itself (an IWAE run), dashed."""
    if not metrics:
        raise InputError("no epoch has finished: there are no training curves to draw")
    figure = Figure(figsize=(6, 3.6), layout="constrained")
    axes = figure.add_subplot()
    marker = "." if len(metrics) <= 50 else None  # a dot per epoch, while the dots stay apart
    axes.plot([m["epoch"] for m in metrics], [m["train_bound"] for m in metrics], marker=marker,
              label="training bound (mean over the epoch)")
    elbo = [(m["epoch"], m["elbo"]) for m in metrics if "elbo" in m and m["elbo"] != m["train_bound"]]
    if elbo:
        axes.plot(*zip(*elbo), marker=marker, linestyle="--", color="C0", alpha=0.6, label="training ELBO")
    validation = [(m["epoch"], m["val_bound"]) for m in metrics if "val_bound" in m]
    if validation:
        axes.plot(*zip(*validation), marker=marker, label="validation bound (end of the epoch)")
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"nats per {unit}")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def kl_bars(kl: torch.Tensor, activity: torch.Tensor | None = None, *,
            activity_threshold: float = ACTIVITY_THRESHOLD) -> Figure:
    """A bar per latent unit j: ``E_n KL(q(z_j|x_n) ‖ p(z_j))`` in nats; with ``activity``, inactive units
    (``Cov_x E_q[z_j] ≤ activity_threshold``) in grey."""
    kl = torch.as_tensor(kl).detach().cpu().double()
    figure = Figure(figsize=(max(5.0, 0.18 * len(kl) + 1.5), 3.6), layout="constrained")
    axes = figure.add_subplot()
    colours = ["C0"] * len(kl) if activity is None else [
        "C0" if a > activity_threshold else "0.6" for a in torch.as_tensor(activity).tolist()]
    axes.bar(range(len(kl)), kl.numpy(), color=colours)
    axes.set_xlabel("latent unit j")
    axes.set_ylabel("KL(q(z_j|x) ‖ p(z_j)), nats")
    title = f"KL per unit: {float(kl.sum()):.2f} nats in all"
    if activity is not None:
        title += f"\n{sum(c == 'C0' for c in colours)} of {len(kl)} units active (blue), inactive in grey"
    axes.set_title(title, fontsize=10)
    return figure


def surgery_terms(result: dict) -> Figure:
    """The terms of ``elbo.surgery.elbo_surgery`` as bars with ± 2 standard errors, in nats per point: the
    reconstruction and the ELBO (left), the KL terms (right), with ``log N``, the most the MI can be. The two parts
    of the marginal KL (the labels indented in ``SURGERY_LABELS``) are lighter bars, their labels marked ↳."""
    figure = Figure(figsize=(9, 3.4), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=(2, 3))
    for axes, names in ((left, ("reconstruction", "elbo")),
                        (right, ("index_code_mi", "marginal_kl", "total_correlation", "dimensionwise_kl", "kl"))):
        means = [result[name]["mean"] for name in names]
        errors = [2 * result[name]["stderr"] for name in names]
        parts = [SURGERY_LABELS[name].startswith(" ") for name in names]
        axes.barh(range(len(names)), means, xerr=errors, color=["#9ecae1" if part else "C0" for part in parts],
                  ecolor="0.3", capsize=3)
        axes.set_yticks(range(len(names)), [f"↳ {SURGERY_LABELS[name].strip()}" if part else SURGERY_LABELS[name]
                                            for name, part in zip(names, parts)])
        axes.invert_yaxis()
        axes.set_xlabel("nats per data point")
        axes.grid(axis="x", alpha=0.3)
    right.axvline(result["log_num_points"], color="C3", linestyle="--", label=f"log N = {result['log_num_points']:.2f}")
    right.legend(loc="lower right", fontsize=8)
    figure.suptitle(f"ELBO surgery over N = {result['num_points']} points (bars ± 2 standard errors)", fontsize=10)
    return figure
