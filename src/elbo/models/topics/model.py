"""Neural topic models by amortized variational inference, on bags of words ``x: (B, V)`` (word counts).

Both have one stochastic layer, the model interface of ``elbo.bounds`` (``prior()``, ``likelihood(z)``, the guide
``model.guide``), and the multinomial head ``elbo.likelihoods.MultinomialLikelihood`` (no multinomial coefficient):

- ``ProdLDA`` (Srivastava & Sutton 2017): ``z ∈ R^K``, ``θ = softmax(z)``, ``p(z)`` the Laplace approximation of a
  Dirichlet(α) in the softmax basis (``dirichlet_laplace``), ``p(x|z) = Mult(softmax(BN(β θ)))`` with ``β`` a
  ``(V, K)`` matrix (a product of experts rather than LDA's mixture), batch norm without affine parameters;
- ``NVDM`` (Miao et al. 2016): ``z ~ N(0, I)``, ``p(x|z) = Mult(softmax(W z + b))``;
- ``DirichletVAE`` (Burkhardt & Kramer 2019): ``θ`` itself is the latent, ``p(θ) = Dirichlet(α)`` and
  ``q(θ|x) = Dirichlet(softplus(f_φ(x)))`` (reparameterised by torch's implicit gradients), so the KL term is the
  exact Dirichlet KL rather than that of a Laplace approximation; ProdLDA's decoder ``softmax(BN(β θ))``.

``q(z|x) = N(loc_φ(x), diag(scale_φ(x)²))`` from an MLP on the counts (``config.hidden_dims``, ``config.activation``),
with dropout on its last hidden layer in training; ProdLDA batch-normalises ``loc`` and ``log scale``
(``config.batch_norm``, as the paper does). In evaluation (``model.eval()``) batch norm uses its running statistics
only, so the score of a document does not depend on the other documents in its batch, and dropout is off.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Dirichlet, Distribution, Independent, Normal

from ...errors import InputError
from ...likelihoods import MultinomialLikelihood
from .config import TopicConfig
from .svi import LDA

__all__ = ["ProdLDA", "NVDM", "DirichletVAE", "TopicEncoder", "DirichletEncoder", "dirichlet_laplace",
           "make_topic_model"]

_ACTIVATIONS = {"softplus": nn.Softplus, "relu": nn.ReLU, "tanh": nn.Tanh}  # config.TOPIC_ACTIVATIONS


def dirichlet_laplace(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Laplace approximation of ``Dirichlet(alpha)`` in the softmax basis (MacKay 1998; Srivastava & Sutton
    2017, eq. 3): ``(μ, σ²)`` with ``μ_k = log α_k - (1/K) Σ_j log α_j`` and
    ``σ²_k = (1/α_k)(1 - 2/K) + (1/K²) Σ_j 1/α_j``, so that ``softmax(μ) = α / Σα`` (the Dirichlet's mode in that
    basis). ``alpha``: shape ``(K,)``, ``K ≥ 2``, positive."""
    if alpha.dim() != 1 or len(alpha) < 2 or not bool((alpha > 0).all()):
        raise InputError(f"alpha must be a vector of K >= 2 positive concentrations, got {alpha.tolist()}",
                         argument="alpha")
    num_topics = len(alpha)
    loc = alpha.log() - alpha.log().mean()
    var = (1 - 2 / num_topics) / alpha + (1 / alpha).sum() / num_topics ** 2
    return loc, var


def _batch_norm(norm: nn.Module | None, h: torch.Tensor) -> torch.Tensor:
    """``BatchNorm1d`` over the last dimension of ``h: (..., C)``, the leading dimensions flattened into its batch."""
    if norm is None:
        return h
    return norm(h.reshape(-1, h.shape[-1])).reshape(h.shape)


def _diagonal_gaussian(loc: torch.Tensor, log_scale: torch.Tensor) -> Distribution:
    return Independent(Normal(loc, log_scale.exp(), validate_args=False), 1)


class TopicEncoder(nn.Module):
    """``x: (B, V) -> q(z|x) = Independent(Normal(loc, scale), 1)``, batch ``(B,)``, event ``(K,)``: the layers
    ``hidden_dims`` with ``activation``, dropout on the last of them (on the counts when there are none), then
    ``loc`` and ``log scale`` as two linear maps, each batch-normalised (no affine parameters) if ``batch_norm``."""

    def __init__(self, vocab_size: int, hidden_dims, num_topics: int, *, activation: str, dropout: float,
                 batch_norm: bool):
        super().__init__()
        self.hidden, n_in = _hidden_layers(vocab_size, hidden_dims, activation, dropout)
        self.loc = nn.Linear(n_in, num_topics)
        self.log_scale = nn.Linear(n_in, num_topics)
        self.loc_norm = nn.BatchNorm1d(num_topics, affine=False) if batch_norm else None
        self.log_scale_norm = nn.BatchNorm1d(num_topics, affine=False) if batch_norm else None

    def forward(self, x: torch.Tensor) -> Distribution:
        h = self.hidden(x)
        return _diagonal_gaussian(_batch_norm(self.loc_norm, self.loc(h)),
                                  _batch_norm(self.log_scale_norm, self.log_scale(h)))


def _hidden_layers(vocab_size: int, hidden_dims, activation: str, dropout: float) -> tuple[nn.Module, int]:
    """The encoder's MLP on the counts, with dropout on its last layer, and the width of its output."""
    layers, n_in = [], vocab_size
    for n_out in hidden_dims:
        layers += [nn.Linear(n_in, n_out), _ACTIVATIONS[activation]()]
        n_in = n_out
    layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers), n_in


class DirichletEncoder(nn.Module):
    """``x: (B, V) -> q(θ|x) = Dirichlet(concentration)``, batch ``(B,)``, event ``(K,)``: the hidden layers, then
    ``concentration = softplus(linear) + MIN_CONCENTRATION`` (batch-normalised before the softplus if
    ``batch_norm``)."""

    MIN_CONCENTRATION = 1e-3  # below it, float draws of θ round to exact zeros, where log q(θ) is infinite

    def __init__(self, vocab_size: int, hidden_dims, num_topics: int, *, activation: str, dropout: float,
                 batch_norm: bool):
        super().__init__()
        self.hidden, n_in = _hidden_layers(vocab_size, hidden_dims, activation, dropout)
        self.concentration = nn.Linear(n_in, num_topics)
        self.norm = nn.BatchNorm1d(num_topics, affine=False) if batch_norm else None

    def forward(self, x: torch.Tensor) -> Distribution:
        h = _batch_norm(self.norm, self.concentration(self.hidden(x)))
        return Dirichlet(nn.functional.softplus(h) + self.MIN_CONCENTRATION, validate_args=False)


class _TopicModel(nn.Module):
    """What both models share: the config, the encoder (``guide``), the multinomial head and the data check."""

    def __init__(self, config: TopicConfig, *, encoder_batch_norm: bool, encoder: type = None):
        super().__init__()
        if not isinstance(config, TopicConfig):
            raise InputError(f"config must be a TopicConfig, got {type(config).__name__}", argument="config")
        if config.vocab_size is None:
            raise InputError("TopicConfig.vocab_size is None: it comes from the data set (configure(config, data) "
                             "fills it in before a model is built)", argument="vocab_size")
        self.config = config
        self.vocab_size, self.num_topics = config.vocab_size, config.num_topics
        self.encoder = (encoder or TopicEncoder)(config.vocab_size, config.hidden_dims, config.num_topics,
                                                 activation=config.activation, dropout=config.dropout,
                                                 batch_norm=encoder_batch_norm)
        self.head = MultinomialLikelihood.from_config(config.vocab_size, config)

    @property
    def latent_dims(self) -> tuple[int, ...]:
        return (self.num_topics,)

    def guide(self, x: torch.Tensor) -> Distribution:
        """``q(z|x)``, batch ``(B,)``, event ``(K,)``."""
        return self.encoder(x)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``q(z|x)`` (module ``encoder``); the rest belong to the decoder."""
        return list(self.encoder.parameters())

    def check_data(self, x: torch.Tensor) -> None:
        """Refuse data this model cannot score: not ``(N, vocab_size)`` floating-point counts, or counts the
        multinomial head refuses (NaN, negative, fractional, empty documents)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.vocab_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x must have shape (N, {self.vocab_size}) (word counts over a vocabulary of "
                             f"{self.vocab_size}), got {shape}", argument="x")
        if not x.is_floating_point():
            raise InputError(f"x must be a floating-point tensor of word counts, got dtype {x.dtype}: "
                             f"convert it with x.float()", argument="x")
        if len(x):  # an empty split has nothing to refuse
            self.head.check(x)


class ProdLDA(_TopicModel):
    """Srivastava & Sutton (2017): ``p(z) = N(μ, diag σ²)`` (``dirichlet_laplace`` of a symmetric Dirichlet(α)),
    ``θ = softmax(z)`` (dropout in training), ``p(x|z) = Mult(softmax(BN(β θ)))``, ``β`` the ``(V, K)`` weight of
    the bias-free ``decoder``; ``likelihood(z)`` takes ``z: (..., K)`` (``(K, B, topics)`` from the bounds)."""

    def __init__(self, config: TopicConfig):
        if config.num_topics < 2:
            raise InputError(f"ProdLDA needs num_topics >= 2 (θ = softmax(z) over one topic is constant), got "
                             f"{config.num_topics}", argument="num_topics")
        super().__init__(config, encoder_batch_norm=config.batch_norm)
        loc, var = dirichlet_laplace(torch.full((config.num_topics,), config.prior_concentration, dtype=torch.float64))
        dtype = torch.get_default_dtype()
        self.register_buffer("prior_loc", loc.to(dtype))
        self.register_buffer("prior_scale", var.sqrt().to(dtype))
        self.theta_dropout = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.num_topics, config.vocab_size, bias=False)  # β
        self.decoder_norm = nn.BatchNorm1d(config.vocab_size, affine=False) if config.batch_norm else None

    def prior(self) -> Distribution:
        return Independent(Normal(self.prior_loc, self.prior_scale, validate_args=False), 1)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        theta = self.theta_dropout(torch.softmax(z, -1))
        return self.head(_batch_norm(self.decoder_norm, self.decoder(theta)))

    def topic_words(self) -> torch.Tensor:
        """``β.T``, shape ``(K, V)``: row ``k`` ranks the words of topic ``k`` (detached)."""
        return self.decoder.weight.detach().T


class NVDM(_TopicModel):
    """Miao et al. (2016): ``p(z) = N(0, I)``, ``p(x|z) = Mult(softmax(W z + b))`` (``decoder``, ``W: (V, K)``);
    ``config.batch_norm`` is ProdLDA's and is not used here. ``init_from_data`` starts ``b`` at the log mean word
    frequencies."""

    def __init__(self, config: TopicConfig):
        super().__init__(config, encoder_batch_norm=False)
        self.decoder = nn.Linear(config.num_topics, config.vocab_size)

    def prior(self) -> Distribution:
        zeros = self.decoder.bias.new_zeros(self.num_topics)  # device and dtype of the parameters
        return _diagonal_gaussian(zeros, zeros)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        return self.head(self.decoder(z))

    def topic_words(self) -> torch.Tensor:
        """``W.T``, shape ``(K, V)``: row ``k`` ranks the words of latent dimension ``k`` (detached)."""
        return self.decoder.weight.detach().T

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        self.decoder.bias.copy_(self.head.output_bias(x.mean(0)))


class DirichletVAE(_TopicModel):
    """Burkhardt & Kramer (2019): ``p(θ) = Dirichlet(α, ..., α)``, ``q(θ|x) = Dirichlet(softplus(f_φ(x)))``
    (``DirichletEncoder``), ``p(x|θ) = Mult(softmax(BN(β θ)))`` as ProdLDA's decoder (dropout on θ in training).
    The latent is ``θ`` on the simplex, so ``latent_dims`` counts its K coordinates; ELBO surgery, which needs a
    Gaussian layer, is not available for it."""

    def __init__(self, config: TopicConfig):
        if config.num_topics < 2:
            raise InputError(f"the Dirichlet VAE needs num_topics >= 2, got {config.num_topics}",
                             argument="num_topics")
        super().__init__(config, encoder_batch_norm=config.batch_norm, encoder=DirichletEncoder)
        self.register_buffer("prior_concentration", torch.full((config.num_topics,), config.prior_concentration,
                                                               dtype=torch.get_default_dtype()))
        self.theta_dropout = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.num_topics, config.vocab_size, bias=False)  # β
        self.decoder_norm = nn.BatchNorm1d(config.vocab_size, affine=False) if config.batch_norm else None

    def prior(self) -> Distribution:
        return Dirichlet(self.prior_concentration, validate_args=False)

    def likelihood(self, theta: torch.Tensor) -> Distribution:
        return self.head(_batch_norm(self.decoder_norm, self.decoder(self.theta_dropout(theta))))

    def topic_words(self) -> torch.Tensor:
        """``β.T``, shape ``(K, V)`` (detached)."""
        return self.decoder.weight.detach().T


MODELS = {"prodlda": ProdLDA, "nvdm": NVDM, "dirichlet": DirichletVAE, "lda": LDA}  # config.TOPIC_MODELS


def make_topic_model(config: TopicConfig) -> ProdLDA | NVDM | DirichletVAE | LDA:
    """The model ``config.model`` names: ``ProdLDA``, ``NVDM``, ``DirichletVAE`` or ``LDA`` (``svi``)."""
    if not isinstance(config, TopicConfig):
        raise InputError(f"config must be a TopicConfig, got {type(config).__name__}", argument="config")
    return MODELS[config.model](config)
