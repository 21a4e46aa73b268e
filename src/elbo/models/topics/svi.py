"""LDA fitted by stochastic variational inference, as a model of the topics kind (``TopicConfig(model="lda")``).

``LDA`` holds the global variational parameters ``λ`` ``(K, V)`` of ``q(β_k) = Dir(λ_k)`` and the step counter, and
``update(x)`` is one step of Hoffman et al.'s SVI on a minibatch (``elbo.models.topics.lda``: the local step on
the minibatch, then ``λ ← (1 - ρ_t) λ + ρ_t (η + (D / B) s)``). ``elbo.train`` takes these conjugate steps in place
of gradient steps (``elbo.protocols.ConjugateUpdates``), so that checkpoints, exact resume, streaming and data
parallelism are the loop's own. In a group of processes each runs the local step on its block of the minibatch and
the statistics ``s`` (and the documents counted) are summed over the group before the global step, so that every
process takes the step one process takes on the whole minibatch.

For evaluation, the model is the generic one-layer model given the topics' point estimate ``β̂ = E[β]``: the prior
``p(θ) = Dir(α)``, the likelihood ``p(x | θ) = Mult(θ β̂)`` (the topic of each word summed out; no multinomial
coefficient, as the neural models'), and the guide ``q(θ | x) = Dir(γ(x))`` with ``γ`` from the local step of the
document under ``β̂``. ``elbo evaluate``'s ELBO and IWAE-K are then bounds on ``log p(x | β̂)``, the quantity the
neural topic models' bounds bound, so their perplexities compare.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Dirichlet, Distribution, Gamma

from ... import distributed
from ...errors import InputError
from ...likelihoods import MultinomialLikelihood
from .config import TopicConfig
from .lda import SparseBatch, as_batch, document_bounds, expected_log_topics, floored_exp, learning_rate, local_step

__all__ = ["LDA"]

_INITIAL = 100.0  # λ and each minibatch's starting γ ~ Gamma(100, 1/100), as Hoffman's and scikit-learn's code


class LDA(nn.Module):
    """Latent Dirichlet allocation by SVI: ``lam`` ``(K, V)`` (a parameter that no gradient updates) and
    ``num_updates``; the settings of ``config`` (``prior_concentration`` for α, ``eta``, ``tau0``, ``kappa``,
    ``local_iterations``, ``local_tolerance``, ``total_documents``)."""

    def __init__(self, config: TopicConfig):
        super().__init__()
        if config.vocab_size is None or config.total_documents is None:
            raise InputError("TopicConfig.vocab_size and total_documents come from the data set (configure(config, "
                             "data) fills them in before a model is built)", argument="total_documents")
        self.config, self.num_topics, self.vocab_size = config, config.num_topics, config.vocab_size
        self.alpha = config.prior_concentration
        self.eta = 1.0 / config.num_topics if config.eta is None else float(config.eta)
        initial = Gamma(torch.tensor(_INITIAL), torch.tensor(_INITIAL)).sample((self.num_topics, self.vocab_size))
        self.lam = nn.Parameter(initial.to(torch.get_default_dtype()), requires_grad=False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))
        self.head = MultinomialLikelihood.from_config(config.vocab_size, config)

    @property
    def latent_dims(self) -> tuple[int, ...]:
        return (self.num_topics,)

    def _local(self, batch: SparseBatch, exp_log_topics: torch.Tensor, initial_gamma=None):
        return local_step(batch, exp_log_topics, self.alpha, initial_gamma=initial_gamma,
                          max_iter=self.config.local_iterations, tol=self.config.local_tolerance)

    @torch.no_grad()
    def update(self, x) -> torch.Tensor:
        """One SVI step on this process's block ``x`` of a minibatch (dense ``(B, V)`` or a ``SparseBatch``);
        returns each of its documents' bound before the step, ``(B,)`` (``lda.document_bounds`` under
        ``E[log β]``: the documents' terms of the corpus ELBO, the topics' global term left out).

        The starting ``γ`` of the whole minibatch is drawn in every process from the same stream (the run's seed),
        each keeping its block's rows, so that a group of processes starts every document where one process
        would; with the sums over the group, the step is then one process's to float rounding."""
        batch = as_batch(x, dtype=self.lam.dtype)
        sizes = torch.zeros(distributed.world_size(), dtype=torch.int64, device=self.lam.device)
        sizes[distributed.rank()] = batch.num_documents
        sizes = distributed.all_reduce_sum(sizes).tolist()  # every process's block size, in rank order
        start = sum(sizes[:distributed.rank()])
        draws = Gamma(torch.tensor(_INITIAL), torch.tensor(_INITIAL)).sample((sum(sizes), self.num_topics))
        elog_topics = expected_log_topics(self.lam)  # digamma of (K, V) once a step: β̃ and the bounds share it
        gamma, statistics = self._local(batch, floored_exp(elog_topics),
                                        draws[start:start + batch.num_documents])
        statistics = distributed.all_reduce_sum(statistics)
        rho = learning_rate(int(self.num_updates) + 1, tau0=self.config.tau0, kappa=self.config.kappa)
        scale = self.config.total_documents / sum(sizes)
        self.lam.mul_(1.0 - rho).add_(self.eta + scale * statistics, alpha=rho)
        self.num_updates += 1
        return document_bounds(batch, gamma, elog_topics, self.alpha).to(self.lam.dtype)

    def topics(self) -> torch.Tensor:
        """The point estimate ``β̂ = E[β] = λ / Σ_w λ``, ``(K, V)``."""
        return self.lam / self.lam.sum(1, keepdim=True)

    def topic_words(self) -> torch.Tensor:
        """``log E[β]``, ``(K, V)``: row ``k`` ranks topic ``k``'s words, and its softmax is the topic (detached)."""
        return self.topics().log().detach()

    def prior(self) -> Distribution:
        return Dirichlet(torch.full((self.num_topics,), self.alpha, dtype=self.lam.dtype, device=self.lam.device),
                         validate_args=False)

    def likelihood(self, theta: torch.Tensor) -> Distribution:
        """``p(x | θ) = Mult(θ β̂)`` for ``θ: (..., K)``: the multinomial head on the logits ``log(θ β̂)``."""
        return self.head((theta @ self.topics()).clamp_min(torch.finfo(theta.dtype).tiny).log())

    @torch.no_grad()
    def guide(self, x) -> Distribution:
        """``q(θ | x) = Dir(γ)``, ``γ`` from the local step of each document of ``x`` under ``β̂`` (from ``γ = 1``,
        deterministic), batch ``(B,)``, event ``(K,)``."""
        gamma, _ = self._local(as_batch(x, dtype=self.lam.dtype), self.topics())
        return Dirichlet(gamma, validate_args=False)

    def check_data(self, x) -> None:
        """Refuse what is not ``(N, vocab_size)`` floating-point word counts (a ``SparseBatch`` passes; a stream
        checks its lines as it reads them)."""
        if isinstance(x, SparseBatch):
            return
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.vocab_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x must have shape (N, {self.vocab_size}) (word counts over a vocabulary of "
                             f"{self.vocab_size}), got {shape}", argument="x")
        if len(x):
            self.head.check(x)
