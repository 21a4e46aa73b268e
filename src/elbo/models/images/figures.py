"""The images kind's figures, each a ``matplotlib.figure.Figure`` (built without ``pyplot``, as in ``elbo.plots``),
and ``figures``, the report's selection of them.

- ``reconstructions``: images (and the grey levels they were binarized from) above the mean of ``p(x|z)`` at
  their posterior mean ``z = E_q[z|x]``;
- ``prior_samples``: the mean of ``p(x|z)`` for ``z ~ p(z)``;
- ``latent_traversals``: one unit of ``E_q[z|x]`` moved across a range of values, the others held;
- ``manifold`` (2-D latents): the mean of ``p(x|z)`` over a grid ``z = Φ⁻¹(u)``, ``u`` evenly spaced in the unit
  square (Kingma & Welling 2013, figure 4); ``encodings`` (2-D latents): ``E_q[z|x]`` coloured by label.

Image grids are ``tile``d: image ``i`` of ``n`` sits at row ``i // columns``, column ``i % columns``, with a
one-pixel gap of NaN (drawn as the background) between images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.distributions import Normal

from ...errors import InputError
from ...families import diagonal_gaussian
from ...protocols import LatentModel, check_capability, one_gaussian_layer

__all__ = ["tile", "decoded_mean", "reconstructions", "prior_samples", "latent_traversals", "manifold_grid",
           "manifold", "encodings", "figures"]


def tile(images, *, columns: int, pad: int = 1) -> np.ndarray:
    """``images: (n, H, W)`` as one ``(rows·(H+pad) - pad, columns·(W+pad) - pad)`` array, NaN between images."""
    images = np.asarray(images, dtype=float)
    count, height, width = images.shape
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + pad) - pad, columns * (width + pad) - pad), np.nan)
    for i, image in enumerate(images):
        top, left = (i // columns) * (height + pad), (i % columns) * (width + pad)
        grid[top:top + height, left:left + width] = image
    return grid


@torch.no_grad()
def decoded_mean(model, z: torch.Tensor) -> torch.Tensor:
    """``E[x | z]``, the mean of ``p(x|z)`` (pixel probabilities for a Bernoulli decoder), shape ``(n, H·W)``
    for ``z: (n, D)``."""
    check_capability(model, LatentModel, "this figure")
    return model.likelihood(z).mean


def _posterior_mean(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return diagonal_gaussian(model.guide(x))[0]


def _image_axes(axes, images: torch.Tensor, image_shape, columns: int, title: str) -> None:
    array = tile(images.detach().cpu().double().reshape(-1, *image_shape).numpy(), columns=columns)
    axes.imshow(array, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.set_title(title, fontsize=10)
    axes.set_axis_off()


def _image_figure(images: torch.Tensor, image_shape, columns: int, title: str, size: float = 5) -> Figure:
    figure = Figure(figsize=(size, size * math.ceil(len(images) / columns) / columns + 0.4), layout="constrained")
    _image_axes(figure.add_subplot(), images, image_shape, columns, title)
    return figure


def reconstructions(model, x: torch.Tensor, *, image_shape, grey: torch.Tensor | None = None,
                    columns: int = 8) -> Figure:
    """Panels from top to bottom, image i in the same place in each: the grey-level images ``grey`` where given
    (``x`` is then their binarization ``x ~ Bernoulli(grey)``), the images ``x: (n, H·W)`` the model encodes, and
    the mean of ``p(x|z)`` at ``z = E_q[z|x]`` (pixel probabilities for a Bernoulli decoder)."""
    if grey is not None and grey.shape != x.shape:
        raise InputError(f"grey must have the shape of x, {tuple(x.shape)}, got {tuple(grey.shape)}")
    means = decoded_mean(model, _posterior_mean(model, x))
    if grey is None:
        panels = [(x, "inputs x"), (means, "reconstructions E[x | z], z = E_q[z|x]")]
    else:
        panels = [(grey, "grey-level images"),
                  (x, "binarized inputs x ~ Bernoulli(grey level), which the model encodes"),
                  (means, "reconstructions E[x | z], z = E_q[z|x]: pixel probabilities")]
    height, width = image_shape
    panel_height = 9 * math.ceil(len(x) / columns) * (height + 1) / (columns * (width + 1)) + 0.35  # and a title
    figure = Figure(figsize=(9, len(panels) * panel_height), layout="constrained")
    for axes, (images, title) in zip(figure.subplots(len(panels), 1), panels):
        _image_axes(axes, images, image_shape, columns, title)
    return figure


def prior_samples(model, *, image_shape, num_images: int = 64, columns: int = 8, seed: int = 0) -> Figure:
    """The mean of ``p(x|z)`` for ``num_images`` draws ``z ~ p(z)``, drawn with torch seeded by ``seed`` inside a
    forked random state (the caller's stream is left as it was)."""
    check_capability(model, LatentModel, "this figure")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = model.prior().sample((num_images,))
    return _image_figure(decoded_mean(model, z), image_shape, columns, "samples: E[x | z], z ~ p(z)")


def latent_traversals(model, x: torch.Tensor, *, image_shape, units, values=None) -> Figure:
    """Row r: the mean of ``p(x|z)`` where ``z = E_q[z|x]`` for the one image ``x: (1, H·W)`` except that unit
    ``units[r]`` takes each of ``values`` (default 9 values from -3 to 3) in turn."""
    values = torch.linspace(-3, 3, 9) if values is None else torch.as_tensor(values)
    units = list(units)
    z = _posterior_mean(model, x)[0]  # (D,)
    grid = z.repeat(len(units), len(values), 1)  # (units, values, D)
    for row, unit in enumerate(units):
        grid[row, :, unit] = values.to(z)
    return _image_figure(decoded_mean(model, grid.reshape(-1, len(z))), image_shape, len(values),
                         f"traversals: units {', '.join(map(str, units))} (rows) from {float(values[0]):g} to "
                         f"{float(values[-1]):g}", size=6)


def _two_dimensional(model) -> None:
    latent_dims = model.latent_dims
    if latent_dims != (2,):
        raise InputError(f"this figure needs a model with a 2-D latent space, got latent_dims={latent_dims}")


def manifold_grid(grid_size: int) -> torch.Tensor:
    """``z`` of the learned-manifold figure, ``(grid_size², 2)``: row r, column c is
    ``(Φ⁻¹(u_c), Φ⁻¹(u_{n-1-r}))`` with ``u_i = (i + ½) / n`` (so ``z_2`` grows upwards, as on a plot)."""
    u = (torch.arange(grid_size, dtype=torch.get_default_dtype()) + 0.5) / grid_size
    quantiles = Normal(0.0, 1.0).icdf(u)
    z_1, z_2 = torch.meshgrid(quantiles, quantiles.flip(0), indexing="xy")
    return torch.stack([z_1, z_2], -1).reshape(-1, 2)


def manifold(model, *, image_shape, grid_size: int = 20) -> Figure:
    """The learned manifold (Kingma & Welling 2013, figure 4): the mean of ``p(x|z)`` for ``z`` on
    ``manifold_grid(grid_size)``, evenly spaced quantiles of the prior."""
    _two_dimensional(model)
    z = manifold_grid(grid_size).to(next(model.parameters()))
    return _image_figure(decoded_mean(model, z), image_shape, grid_size,
                         "learned manifold: E[x | z], z = Φ⁻¹(u) on a grid of the unit square", size=7)


def encodings(model, x: torch.Tensor, labels: torch.Tensor | None = None) -> Figure:
    """``E_q[z|x]`` of every image of ``x``, a point each, coloured by ``labels`` where there are any."""
    _two_dimensional(model)
    z = _posterior_mean(model, x).detach().cpu().double().numpy()
    figure = Figure(figsize=(5.5, 4.6), layout="constrained")
    axes = figure.add_subplot()
    if labels is None:
        axes.scatter(z[:, 0], z[:, 1], s=4, alpha=0.6)
    else:
        points = axes.scatter(z[:, 0], z[:, 1], c=labels.cpu().numpy(), cmap="tab10", s=4, alpha=0.8,
                              vmin=-0.5, vmax=9.5)
        figure.colorbar(points, ax=axes, label="label", ticks=range(10))
    axes.set_xlabel("E_q[z_1 | x]")
    axes.set_ylabel("E_q[z_2 | x]")
    axes.set_title(f"encodings of {len(z)} images" + ("" if labels is not None else " (no labels)"), fontsize=10)
    return figure




def figures(run, test: torch.Tensor, labels: torch.Tensor | None, kl: torch.Tensor | None) -> tuple[list, list]:
    """The report's image figures of ``run`` (``elbo.runs.Run``): ``(name, caption, Figure)`` for each this model
    allows, and notes on those it does not. ``test`` is the scored test split on the model's device, ``labels`` its
    labels or ``None``, ``kl`` the KL of each unit (``None`` without one Gaussian stochastic layer)."""
    model, shape = run.model, run.config.model.image_shape
    if not one_gaussian_layer(model):
        return [], ["Reconstructions, samples and traversals need a model with one stochastic layer."]
    made = []
    x, grey = test[:16], None if run.data.test_grey is None else run.data.test_grey[:16].to(test)
    caption = (f"The first {len(x)} test images (top) and the mean of p(x|z) at their posterior mean (bottom)."
               if grey is None else
               f"The first {len(x)} test images: grey levels (top), the binary images the model is scored on (drawn "
               f"once with a fixed seed), and the mean of p(x|z) at their posterior mean.")
    made.append(("reconstructions", caption,
                 reconstructions(model, x, grey=grey, image_shape=shape, columns=len(x))))
    made.append(("prior_samples", "The mean of p(x|z) for z drawn from the prior.",
                 prior_samples(model, image_shape=shape)))
    units = torch.argsort(kl, descending=True)[:8].tolist()
    made.append(("latent_traversals", "The first test image's posterior mean with one unit moved from -3 to 3 (the "
                                      "units with the most KL, one per row).",
                 latent_traversals(model, test[:1], image_shape=shape, units=units)))
    if run.config.model.latent_dims == (2,):
        made.append(("manifold", "The learned manifold (Kingma & Welling 2013, figure 4).",
                     manifold(model, image_shape=shape)))
        made.append(("encodings", "Posterior means of the test images, coloured by label.",
                     encodings(model, test, labels)))
    return made, []
