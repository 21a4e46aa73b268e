"""The report's figures of a spike-train run (the kind's ``figures`` hook): test trials' spikes under the inferred
rates, the inferred latent trajectories by condition, and the learned timescales. matplotlib ``Figure`` objects,
never pyplot (no global state, no display)."""

from __future__ import annotations

import numpy as np
import torch

from .infer import infer

__all__ = ["figures", "raster", "trajectories", "timescales"]

TRIALS = 3  # test trials in the raster
TRACES = 3  # neurons whose rates are drawn as lines


def figures(run, test: torch.Tensor, labels, kl) -> tuple[list, list]:
    """``(name, caption, Figure)`` of the raster, the latent trajectories and the timescales of ``run`` on its test
    trials ``test`` (``labels``: their conditions, or ``None``); ``kl`` is not used."""
    data, model = run.data, run.model
    posterior = infer(model, test)
    true_rates, true_latents = (None if value is None else value[:len(test)].cpu() for value in data.truth("test"))
    counts = test.cpu()
    known = " (dashed: the true rates)" if true_rates is not None else ""
    made = [("raster", f"The first {min(TRIALS, len(test))} test trials: spikes (black) over the inferred rates of "
                       f"every neuron (colour; below the line, the held-out neurons, predicted from the held-in "
                       f"ones), and the rates of the {TRACES} most modulated neurons with ± one standard deviation "
                       f"under q{known}.",
             raster(counts, posterior["rates"], posterior["rates_sd"], true_rates, bin_size=data.bin_size,
                    held_in=data.held_in)),
            ("latent_trajectories", "The posterior mean trajectory of every test trial, coloured by "
                                    + ("condition" if labels is not None else "trial (the data have no conditions)")
                                    + ("; mapped affinely onto the true latents (as latent R² maps them), beside "
                                       "them." if true_latents is not None else "."),
             trajectories(posterior["latents"], labels, true_latents)),
            ("timescales", "The GP prior's learned timescale of each latent dimension (dashed: where it started).",
             timescales(model.log_timescale.detach().exp().cpu(), initial=run.config.model.timescale))]
    return made, []


def raster(counts, rates, rates_sd, true_rates, *, bin_size: float, held_in: int):
    """A column per trial (the first ``TRIALS``): spikes over the inferred rates, then ``TRACES`` neurons' rates."""
    from matplotlib.figure import Figure

    shown = min(TRIALS, len(counts))
    neurons = rates.reshape(-1, rates.shape[-1]).std(0).argsort(descending=True)[:TRACES].tolist()
    times = (np.arange(counts.shape[1]) + 0.5) * bin_size
    figure = Figure(figsize=(4.0 * shown, 6.0), layout="constrained")
    axes = figure.subplots(2, shown, squeeze=False, sharex=True, height_ratios=(3, 2))
    top = float(rates[:shown].max())
    for m in range(shown):
        upper, lower = axes[0, m], axes[1, m]
        image = upper.imshow(rates[m].T.numpy(), aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=top,
                             extent=(0, times[-1] + bin_size / 2, -0.5, counts.shape[2] - 0.5))
        bins, cells = np.nonzero(counts[m].numpy())
        upper.scatter(times[bins], cells, s=4 * counts[m].numpy()[bins, cells], c="black", marker="|")
        upper.axhline(held_in - 0.5, color="white", linewidth=1)
        upper.set_title(f"test trial {m}")
        for colour, n in zip(("C0", "C1", "C3"), neurons):
            mean, sd = rates[m, :, n].numpy(), rates_sd[m, :, n].numpy()
            lower.plot(times, mean, color=colour, label=f"neuron {n}" + (" (held out)" if n >= held_in else ""))
            lower.fill_between(times, mean - sd, mean + sd, color=colour, alpha=0.2, linewidth=0)
            if true_rates is not None:
                lower.plot(times, true_rates[m, :, n].numpy(), color=colour, linestyle="--")
        lower.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("neuron")
    axes[1, 0].set_ylabel("rate (spikes/s)")
    axes[1, 0].legend(fontsize=7)
    figure.colorbar(image, ax=axes[0, :].tolist(), label="inferred rate (spikes/s)")
    return figure


def _projected(latents: torch.Tensor) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(M, T, d)`` latents as points to draw, and their axes' names: all three for ``d = 3``, the first two
    principal components (over every trial and bin) for ``d > 3``, the latents themselves for ``d ≤ 2``."""
    z = latents.double().numpy()
    d = z.shape[-1]
    if d <= 3:
        return z, tuple(f"z{j + 1}" for j in range(d))
    flat = z.reshape(-1, d) - z.reshape(-1, d).mean(0)
    _, _, components = np.linalg.svd(flat, full_matrices=False)
    return (flat @ components[:2].T).reshape(*z.shape[:2], 2), ("PC 1", "PC 2")


def _draw_paths(axes, points: np.ndarray, names, colours) -> None:
    for path, colour in zip(points, colours):
        if points.shape[-1] == 1:
            axes.plot(np.arange(len(path)), path[:, 0], color=colour, linewidth=0.8)
        else:
            axes.plot(*path.T, color=colour, linewidth=0.7)
    labels = ("bin",) + tuple(names) if points.shape[-1] == 1 else names
    for set_label, name in zip((axes.set_xlabel, axes.set_ylabel, getattr(axes, "set_zlabel", None)), labels):
        set_label(name)


def _aligned(latents: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``latents A + c``, the affine map of least squares onto ``truth`` over every trial and bin (a latent space is
    identified up to an affine map; ``metrics.latent_r2`` scores the same map on held-out bins)."""
    x = latents.double().reshape(-1, latents.shape[-1])
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    y = truth.double().reshape(-1, truth.shape[-1])
    return (x @ torch.linalg.lstsq(x, y).solution).reshape(*truth.shape)


def trajectories(latents: torch.Tensor, labels, true_latents=None):
    """Each trial's path through latent space (``_projected``), a colour per condition (per trial without labels);
    where the true latents are known, the inferred ones mapped onto them (``_aligned``), beside them."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    groups = np.arange(len(latents)) if labels is None else labels.cpu().numpy()
    colours = colormaps["hsv"](np.unique(groups, return_inverse=True)[1] / max(1, len(np.unique(groups))))
    panels = [("inferred (posterior mean)", latents)] if true_latents is None else \
        [("inferred, mapped affinely onto the truth", _aligned(latents, true_latents)), ("true", true_latents)]
    figure = Figure(figsize=(5.0 * len(panels), 4.5), layout="constrained")
    for index, (title, values) in enumerate(panels, start=1):
        points, names = _projected(values)
        axes = figure.add_subplot(1, len(panels), index, projection="3d" if points.shape[-1] == 3 else None)
        _draw_paths(axes, points, names, colours)
        axes.set_title(title)
    return figure


def timescales(values: torch.Tensor, *, initial: float):
    """A bar per latent dimension: its learned timescale ``ℓ_j`` in ms."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(3.0, 0.6 * len(values) + 2.0), 3.0), layout="constrained")
    axes = figure.add_subplot()
    axes.bar([f"z{j + 1}" for j in range(len(values))], values.numpy() * 1000, color="C0")
    axes.axhline(initial * 1000, color="grey", linestyle="--", linewidth=1)
    axes.set_ylabel("timescale (ms)")
    return figure
