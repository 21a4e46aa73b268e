"""The figures hold what they claim: every image tile is the model's output for the stated z, every line and bar
the numbers it was drawn from; and making them leaves no global matplotlib state behind."""

import io
import math

import matplotlib
import numpy as np
import pytest
import torch
from torch.distributions import Normal

from elbo import plots
from elbo.models.images import figures
from elbo.models.images.config import VAEConfig
from elbo.models.images.model import make_vae

SHAPE = (3, 4)


@pytest.fixture
def model():
    torch.manual_seed(3)
    return make_vae(VAEConfig(latent_dims=(2,), hidden_dims=((8,),), image_shape=SHAPE, likelihood="bernoulli")).eval()


def _tiles(axes, count, columns, shape=SHAPE):
    """The images of an ``imshow``-ed ``figures.tile`` grid, read back from the axes, ``(count, H, W)``."""
    grid = np.asarray(axes.images[0].get_array(), dtype=float)
    height, width = shape
    return np.stack([grid[(i // columns) * (height + 1):(i // columns) * (height + 1) + height,
                          (i % columns) * (width + 1):(i % columns) * (width + 1) + width] for i in range(count)])


def _assert_images(axes, expected, columns):
    expected = expected.detach().reshape(-1, *SHAPE).numpy()
    np.testing.assert_allclose(_tiles(axes, len(expected), columns), expected, rtol=0, atol=1e-12)


def test_tile_puts_image_i_at_row_i_div_columns_and_gaps_of_nan():
    images = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    grid = figures.tile(images, columns=2)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    assert np.array_equal(grid[3:5, 4:7], images[3]) and np.isnan(grid[2]).all() and np.isnan(grid[:, 3]).all()
    assert np.isnan(grid[6:8, 4:7]).all()  # no sixth image


def test_training_curves_are_the_metrics(model):
    metrics = [{"epoch": 1, "train_bound": -30.0, "val_bound": -31.0}, {"epoch": 2, "train_bound": -28.5},
               {"epoch": 3, "train_bound": -27.0, "val_bound": -27.5}]
    axes = plots.training_curves(metrics).axes[0]
    train, val = axes.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3] and list(train.get_ydata()) == [-30.0, -28.5, -27.0]
    assert list(val.get_xdata()) == [1, 3] and list(val.get_ydata()) == [-31.0, -27.5]
    with pytest.raises(ValueError, match="no epoch has finished"):
        plots.training_curves([])
    for m in metrics:  # a VAE run: the ELBO is the bound, and is not drawn twice
        m["elbo"] = m["train_bound"]
    assert len(plots.training_curves(metrics).axes[0].get_lines()) == 2
    for m in metrics:  # an IWAE run: the training ELBO lies below the bound, dashed
        m["elbo"] = m["train_bound"] - 1
    _, elbo, _ = plots.training_curves(metrics).axes[0].get_lines()
    assert list(elbo.get_ydata()) == [-31.0, -29.5, -28.0] and elbo.get_linestyle() == "--"


@torch.no_grad()
def test_reconstructions_sit_under_their_inputs_and_grey_levels(model):
    """Panels from top to bottom, titled: the grey levels where given, the binary inputs, their reconstructions."""
    grey = torch.rand(10, 12)
    x = grey.bernoulli()
    means = torch.sigmoid(model.decoder(model.guide(x).mean))  # the Bernoulli mean is sigmoid(logits)
    figure = figures.reconstructions(model, x, grey=grey, image_shape=SHAPE, columns=4)
    assert [axes.get_title() for axes in figure.axes] == [
        "grey-level images", "binarized inputs x ~ Bernoulli(grey level), which the model encodes",
        "reconstructions E[x | z], z = E_q[z|x]: pixel probabilities"]
    bottoms = [axes.get_position().y0 for axes in figure.axes]
    assert bottoms[0] > bottoms[1] > bottoms[2]  # one above the other, in that order
    for axes, images in zip(figure.axes, (grey, x, means)):
        _assert_images(axes, images, 4)
    inputs, outputs = figures.reconstructions(model, x, image_shape=SHAPE, columns=4).axes
    assert [inputs.get_title(), outputs.get_title()] == ["inputs x", "reconstructions E[x | z], z = E_q[z|x]"]
    _assert_images(inputs, x, 4)
    _assert_images(outputs, means, 4)
    with pytest.raises(ValueError, match=r"grey must have the shape of x, \(10, 12\), got \(9, 12\)"):
        figures.reconstructions(model, x, grey=grey[:9], image_shape=SHAPE)


@torch.no_grad()
def test_prior_samples_are_decoded_draws_and_leave_the_random_stream_alone(model):
    state = torch.get_rng_state()
    axes = figures.prior_samples(model, image_shape=SHAPE, num_images=6, columns=3, seed=4).axes[0]
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(4)
    _assert_images(axes, model.likelihood(model.prior().sample((6,))).mean, 3)


@torch.no_grad()
def test_latent_traversals_move_one_unit_per_row(model):
    x = torch.rand(1, 12).bernoulli()
    values = torch.tensor([-2.0, 0.0, 1.5])
    axes = figures.latent_traversals(model, x, image_shape=SHAPE, units=[1, 0], values=values).axes[0]
    z = model.guide(x).mean[0]
    expected = []
    for unit in (1, 0):
        for value in values:
            moved = z.clone()
            moved[unit] = value
            expected.append(model.likelihood(moved).mean)
    _assert_images(axes, torch.stack(expected), 3)


@torch.no_grad()
def test_the_manifold_decodes_evenly_spaced_quantiles_of_the_prior(model):
    grid = figures.manifold_grid(4)
    u = Normal(0.0, 1.0).cdf(grid)
    assert torch.allclose(u[:4, 0], torch.tensor([0.125, 0.375, 0.625, 0.875]))  # z_1 grows along a row
    assert torch.allclose(u[::4, 1], torch.tensor([0.875, 0.625, 0.375, 0.125]))  # z_2 grows upwards
    axes = figures.manifold(model, image_shape=SHAPE, grid_size=4).axes[0]
    _assert_images(axes, model.likelihood(grid).mean, 4)
    three = make_vae(VAEConfig(latent_dims=(3,), hidden_dims=((8,),), image_shape=SHAPE, likelihood="bernoulli"))
    with pytest.raises(ValueError, match=r"2-D latent space, got latent_dims=\(3,\)"):
        figures.manifold(three, image_shape=SHAPE)


@torch.no_grad()
def test_encodings_are_posterior_means_coloured_by_label(model):
    x, labels = torch.rand(25, 12).bernoulli(), torch.arange(25) % 10
    axes = figures.encodings(model, x, labels).axes[0]
    points = axes.collections[0]
    np.testing.assert_allclose(points.get_offsets(), model.guide(x).mean.numpy(), rtol=0, atol=1e-12)
    assert points.get_array().tolist() == labels.tolist()
    unlabelled = figures.encodings(model, x).axes[0]
    assert "no labels" in unlabelled.get_title() and unlabelled.collections[0].get_array() is None


def test_kl_bars_are_the_values_and_grey_where_inactive():
    kl, activity = torch.tensor([0.5, 0.001, 2.0]), torch.tensor([0.3, 0.005, 1.0])
    axes = plots.kl_bars(kl, activity).axes[0]
    bars = axes.patches
    assert [bar.get_height() for bar in bars] == pytest.approx(kl.tolist())
    assert [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in bars] == ["#1f77b4", "#999999", "#1f77b4"]
    assert "2 of 3 units active" in axes.get_title()


def test_surgery_terms_are_the_means_with_their_log_n_bound():
    names = ("reconstruction", "elbo", "index_code_mi", "marginal_kl", "total_correlation", "dimensionwise_kl", "kl")
    result = {name: {"mean": float(i) - 3, "stderr": 0.1} for i, name in enumerate(names)}
    result.update(num_points=100, log_num_points=math.log(100))
    left, right = plots.surgery_terms(result).axes
    assert [bar.get_width() for bar in left.patches] == [-3.0, -2.0]
    assert [bar.get_width() for bar in right.patches] == [-1.0, 0.0, 1.0, 2.0, 3.0]
    assert list(right.get_lines()[-1].get_xdata()) == [math.log(100)] * 2
    labels = [label.get_text() for label in right.get_yticklabels()]  # right-aligned: indenting would not show
    assert labels[2:4] == ["↳ total correlation", "↳ dimension-wise KL"]
    assert right.patches[2].get_facecolor() == right.patches[3].get_facecolor() != right.patches[1].get_facecolor()


def test_figures_do_not_touch_pyplot_or_the_backend(model):
    import matplotlib.pyplot as pyplot

    backend, open_figures = matplotlib.get_backend(), pyplot.get_fignums()
    rendered = io.BytesIO()
    figures.prior_samples(model, image_shape=SHAPE, num_images=4).savefig(rendered, format="png")
    assert rendered.getvalue().startswith(b"\x89PNG\r\n\x1a\n")
    assert pyplot.get_fignums() == open_figures and matplotlib.get_backend() == backend
