"""Encoder and decoder networks: the layer sizes of the presets, and convolutional shapes on every image size."""

import pytest
import torch
from torch import nn

from elbo.models.images.networks import MLP, ConvDecoder, ConvEncoder, Tanh, network


def test_mlp_is_linear_layers_with_activations_between():
    mlp = MLP((784, 200, 200, 100), activation="tanh")
    assert [type(m) for m in mlp.layers] == [nn.Linear, Tanh, nn.Linear, Tanh, nn.Linear]
    assert [(m.in_features, m.out_features) for m in mlp.layers if isinstance(m, nn.Linear)] == [
        (784, 200), (200, 200), (200, 100)]
    assert mlp.output_bias is mlp.layers[-1].bias
    assert mlp(torch.zeros(3, 4, 784)).shape == (3, 4, 100)  # any leading dimensions


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tanh_is_torchs_eagerly_and_within_rounding_of_it_compiled(dtype):
    """Compiled, Tanh is 2 sigmoid(2h) - 1: equal to tanh up to rounding that is absolute near 0 (2 eps in value,
    4 eps in gradient) on a grid over [-20, 20] and on 1e-30..10 of either sign; eagerly it is torch.tanh."""
    h = torch.cat([torch.linspace(-20, 20, 200_001, dtype=dtype), torch.logspace(-30, 1, 1001, dtype=dtype),
                   -torch.logspace(-30, 1, 1001, dtype=dtype)]).requires_grad_()
    eps = torch.finfo(dtype).eps
    assert torch.equal(Tanh()(h), torch.tanh(h))
    compiled = torch.compile(Tanh())
    (gradient,) = torch.autograd.grad(compiled(h).sum(), h)
    (expected,) = torch.autograd.grad(torch.tanh(h).sum(), h)
    torch.testing.assert_close(compiled(h), torch.tanh(h), rtol=0, atol=2 * eps)
    torch.testing.assert_close(gradient, expected, rtol=0, atol=4 * eps)
    graphs = []

    def record(graph, example_inputs):  # a torch.compile backend that keeps the traced graph and runs it as it is
        graphs.append(graph)
        return graph

    torch.compile(Tanh(), backend=record)(h)
    (graph,) = graphs
    assert "sigmoid" in graph.code and "tanh" not in graph.code


def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match="activation must be one of .* got 'sigmoid'"):
        MLP((2, 3), activation="sigmoid")
    with pytest.raises(ValueError, match="network must be one of .* got 'rnn'"):
        network("rnn", 2, (3,), 4, activation="tanh")
    with pytest.raises(ValueError, match="at least 4x4"):
        ConvEncoder((3, 3), 4)


@pytest.mark.parametrize("image_shape", [(28, 28), (8, 8), (28, 20), (27, 13)])
def test_convolutional_networks_map_flat_images_to_features_and_back(image_shape):
    pixels = image_shape[0] * image_shape[1]
    encoder, decoder = ConvEncoder(image_shape, 10), ConvDecoder(5, image_shape)
    x = torch.rand(2, 3, pixels, requires_grad=True)
    assert encoder(x).shape == (2, 3, 10)
    z = torch.randn(2, 3, 5, requires_grad=True)
    h = decoder(z)
    assert h.shape == (2, 3, pixels)
    h.sum().backward()
    assert z.grad.abs().sum() > 0


def test_convolutional_decoder_has_a_bias_per_pixel_and_keeps_images_apart():
    decoder = ConvDecoder(4, (8, 6))
    with torch.no_grad():
        decoder.output_bias.copy_(torch.arange(48.0))
    z = torch.randn(3, 4)
    h = decoder(z)
    assert decoder.output_bias.shape == (48,)
    # each image's output depends on its own z only
    torch.testing.assert_close(decoder(z[1:2]), h[1:2])
    with torch.no_grad():
        for p in decoder.parameters():
            if p is not decoder.output_bias:
                p.zero_()
    torch.testing.assert_close(decoder(z), torch.arange(48.0).expand(3, 48))
