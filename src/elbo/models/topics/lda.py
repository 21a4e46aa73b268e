"""Latent Dirichlet allocation fitted by stochastic (online) variational inference, as pure functions on tensors.

The model (Blei, Ng & Jordan 2003): ``K`` topics ``β_k ~ Dir(η 1_V)`` over a vocabulary of ``V`` words; each document
``d`` has proportions ``θ_d ~ Dir(α 1_K)``, and each of its words a topic ``z ~ Cat(θ_d)`` and a word ``w ~ Cat(β_z)``.
The mean-field family ``q(β_k) = Dir(λ_k)``, ``q(θ_d) = Dir(γ_d)``, ``q(z_dw) = Cat(φ_dw)`` gives, with
``E[log θ_dk] = ψ(γ_dk) - ψ(Σ_k γ_dk)`` and ``E[log β_kw] = ψ(λ_kw) - ψ(Σ_w λ_kw)``:

* the local step (``local_step``), coordinate ascent in each document of the minibatch, ``β̃ = exp(E[log β])``:
  ``φ_dwk ∝ exp(E[log θ_dk]) β̃_kw`` and ``γ_dk = α + Σ_w n_dw φ_dwk``;
* the global step (``OnlineLDA.update``), a natural-gradient step of size ``ρ_t = (τ0 + t)^(-κ)`` on ``λ`` from a
  minibatch of ``B`` of the corpus's ``D`` documents: ``λ̂ = η + (D / B) Σ_d n_dw φ_dwk``, ``λ ← (1 - ρ_t) λ + ρ_t λ̂``;
* the bound (``bound``, ``perplexity``) and the per-document bounds (``document_bounds``, ``document_elbos``).

Every convention is scikit-learn's ``LatentDirichletAllocation(learning_method="online")`` (its ``_e_step``,
``partial_fit``, ``_approx_bound`` and ``perplexity``), so that the same initial ``λ`` and minibatches give the same
numbers to float tolerance; ``tests/test_topics_lda.py`` checks it. The documents of a minibatch are updated all at
once, as sparse matrix products over a ``SparseBatch`` (no loop over documents).

Speed: the local step is most of the time, and has two implementations (``local_step``'s ``kernel``). The tensor
code updates every document of a minibatch at once, two sparse products an update; at minibatches of 128 it is
bounded by per-operation overhead (about fifteen small tensor operations an update, up to 100 updates) and by
``torch.special.digamma``. The C loop (``elbo.models.topics.native``, the default where a C compiler is found)
takes one document at a time with SIMD ψ, log and exp, four of the document's words at a time; the README's LDA
section has both side by side with scikit-learn's.

Sources: Hoffman, Blei & Bach 2010, "Online learning for latent Dirichlet allocation" (NeurIPS), Algorithm 2;
Hoffman, Blei, Wang & Paisley 2013, "Stochastic variational inference" (JMLR 14), §4 and Figure 6.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Dirichlet, kl_divergence

from ..._checks import check_int_at_least, check_positive, check_positive_float, check_seed, one_of
from ...errors import InputError
from . import native
from .sparse import SparseBatch, as_batch

__all__ = ["SparseBatch", "as_batch", "dirichlet_expectation", "local_step", "OnlineLDA", "learning_rate",
           "expected_log_topics", "exp_expected_log_topics", "floored_exp", "topics", "document_bounds", "topic_bound",
           "bound", "perplexity", "document_elbos", "TOPIC_ESTIMATES"]

EPS = float(np.finfo(np.float64).eps)  # added to φ's normalisers, as scikit-learn does (see _word_norms)
KERNELS = ("auto", "native", "torch")  # local_step's implementations
TOPIC_ESTIMATES = ("point", "expected_log")  # the topics a per-document bound conditions on (document_elbos)

def dirichlet_expectation(concentration: torch.Tensor) -> torch.Tensor:
    """``E[log θ_k] = ψ(c_k) - ψ(Σ_j c_j)`` for ``θ ~ Dir(c)``, each row of ``concentration`` ``(..., K)``."""
    return torch.special.digamma(concentration) - torch.special.digamma(concentration.sum(-1, keepdim=True))


def _floor(dtype: torch.dtype) -> float:
    """``tiny^0.4`` of ``dtype`` (6.4e-16 in float32, 1.1e-123 in float64), the least value the local step's factors
    ``exp(E[log θ_dk])`` and ``β̃_kw`` take: a product of two is then at least ``tiny^0.8``, far from subnormal
    (sums of subnormal products made ``sampled_addmm`` twice as slow after one pass over 20 Newsgroups, and
    arithmetic on them the local step 7 times slower in float32), and far below ``EPS`` of any normaliser, so the
    change to ``γ`` is below ``1e-10`` of ``α``."""
    return torch.finfo(dtype).tiny ** 0.4


def _floored(values: torch.Tensor) -> torch.Tensor:
    """``values`` (in place) raised to at least ``_floor`` of their dtype."""
    return values.clamp_min_(_floor(values.dtype))


def _floored_exp(log_values: torch.Tensor) -> torch.Tensor:
    """``_floored(exp(log_values))``, in place, with the floor applied to the exponent first: ``exp`` of an exponent
    below the floor's would be subnormal or zero, and computing those took four fifths of the time of ``exp`` on a
    minibatch of 1,024 synthetic documents of 100 topics."""
    return log_values.clamp_min_(math.log(_floor(log_values.dtype))).exp_()


def _eps_pattern(batch: SparseBatch) -> torch.Tensor:
    """The batch's ``(B, V)`` CSR pattern holding ``EPS`` at every place, the first term of ``_word_norms``."""
    return batch.csr(torch.full_like(batch.counts, EPS))


def _word_norms(eps_pattern: torch.Tensor, exp_elog_theta: torch.Tensor, beta_t: torch.Tensor) -> torch.Tensor:
    """``(nnz,)`` the normaliser of φ at each of the batch's places, ``ε + Σ_k exp(E[log θ_dk]) β̃_kw``.

    ``ε = EPS``, the float64 machine epsilon, scikit-learn's for float64 data, in float32 too: scikit-learn takes
    float32's (1.2e-7), which is larger than many normalisers (``β̃_kw`` is ~1/V or less) and so biases φ; on 20
    Newsgroups that made the held-out perplexity 12% worse. ``beta_t`` is ``β̃ᵀ`` ``(V, K)``, contiguous: a place's
    column of ``β̃`` is then contiguous, which makes ``sampled_addmm`` 1.2 to 1.6 times faster."""
    return torch.sparse.sampled_addmm(eps_pattern, exp_elog_theta, beta_t.T).values()


def _gamma_update(batch: SparseBatch, eps_pattern, exp_elog_theta, beta_t, alpha: float) -> torch.Tensor:
    """``γ_dk = α + exp(E[log θ_dk]) Σ_w β̃_kw n_dw / (ε + Σ_k' exp(E[log θ_dk']) β̃_k'w)``: ``(B, K)``."""
    weights = batch.counts / _word_norms(eps_pattern, exp_elog_theta, beta_t)
    return (batch.csr(weights) @ beta_t).mul_(exp_elog_theta).add_(alpha)


def _check_topics_matrix(name: str, values, vocab_size: int | None = None) -> torch.Tensor:
    values = torch.as_tensor(values)
    wrong_width = vocab_size is not None and values.dim() == 2 and values.shape[1] != vocab_size
    if values.dim() != 2 or not values.is_floating_point() or wrong_width:
        want = f"(K, {vocab_size})" if vocab_size is not None else "(K, V)"
        raise InputError(f"{name} must be a floating-point {want} tensor, got shape {tuple(values.shape)} of "
                         f"{values.dtype}", argument=name)
    if not torch.isfinite(values).all() or (values <= 0).any():
        raise InputError(f"{name} must be finite and > 0", argument=name)
    return values


def _check_local_settings(alpha, max_iter, tol) -> None:
    check_positive_float(alpha=alpha)
    check_int_at_least("max_iter", max_iter, 0)
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 <= tol < math.inf):
        raise InputError(f"tol must be a finite number >= 0, got {tol!r}", argument="tol")


def local_step(batch, exp_elog_beta: torch.Tensor, alpha: float, *, initial_gamma: torch.Tensor | None = None,
               max_iter: int = 100, tol: float = 1e-3, kernel: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The local (E-) step of LDA on a minibatch: ``γ`` ``(B, K)`` and the sufficient statistics ``(K, V)``.

    ``batch``: a ``SparseBatch`` or dense counts ``(B, V)`` (cast to ``exp_elog_beta``'s dtype);
    ``exp_elog_beta``: ``β̃ = exp(E[log β])`` ``(K, V)``; ``alpha``: the symmetric prior of ``θ``. Starting from
    ``initial_gamma`` (default ones, as scikit-learn's ``transform``; training draws ``Gamma(100, 1/100)``),
    coordinate ascent repeats, for all documents at once,

        γ_dk ← α + exp(E[log θ_dk]) Σ_w n_dw β̃_kw / (Σ_k' exp(E[log θ_dk']) β̃_k'w + ε),    E[log θ_dk] from γ_d,

    and document ``d`` stops once its mean absolute change ``mean_k |Δγ_dk|`` is below ``tol``, or after ``max_iter``
    updates: scikit-learn's ``max_doc_update_iter``, ``mean_change_tol`` and ``mean_change`` exactly. A stopped
    document's ``γ_d`` is frozen at the update that stopped it; it may still be computed for a few more updates,
    with their values dropped, until the set of moving documents next shrinks (``_coordinate_ascent``), so the
    result is as if each document had been iterated alone. The statistics are then, from the final ``γ``,

        s_kw = β̃_kw Σ_d n_dw exp(E[log θ_dk]) / (Σ_k' exp(E[log θ_dk']) β̃_k'w + ε) = Σ_d n_dw φ_dwk,

    scikit-learn's ``suff_stats`` of ``_e_step(cal_sstats=True)``. Each update is ``O(nnz K)``.

    ``kernel``: ``"native"``, the loop in C of ``elbo.models.topics.native``, one document at a time (on the CPU,
    in float32 or float64); ``"torch"``, tensor code for all documents at once, two sparse products an update
    (``sampled_addmm`` for the normalisers, a CSR × dense product for ``γ``; ``_coordinate_ascent``); ``"auto"``,
    the first where it can run. They agree to float rounding (``tests/test_topics_native.py``).
    """
    exp_elog_beta = _check_topics_matrix("exp_elog_beta", exp_elog_beta)
    batch = as_batch(batch, dtype=exp_elog_beta.dtype)
    if batch.vocab_size != exp_elog_beta.shape[1]:
        raise InputError(f"batch has {batch.vocab_size} words, exp_elog_beta {exp_elog_beta.shape[1]}",
                         argument="exp_elog_beta")
    _check_local_settings(alpha, max_iter, tol)
    shape = (batch.num_documents, exp_elog_beta.shape[0])
    if initial_gamma is None:
        gamma = torch.ones(shape, dtype=exp_elog_beta.dtype)
    else:
        gamma = torch.as_tensor(initial_gamma).to(exp_elog_beta.dtype).clone(memory_format=torch.contiguous_format)
        if gamma.shape != shape or not torch.isfinite(gamma).all() or (gamma <= 0).any():
            raise InputError(f"initial_gamma must be finite, > 0 and of shape {shape}, got {tuple(gamma.shape)}",
                             argument="initial_gamma")
    beta_t = _floored(exp_elog_beta.T.contiguous())  # (V, K), the dense factor of every sparse product
    if _native_kernel(kernel, gamma):
        weights, exp_elog_theta = native.local_step(
            batch.offsets.contiguous(), batch.word_ids.contiguous(), batch.counts.contiguous(), beta_t, alpha,
            max_iter, tol, math.log(_floor(gamma.dtype)), EPS, gamma)
    else:
        exp_elog_theta = _floored_exp(dirichlet_expectation(gamma))
        _coordinate_ascent(batch, gamma, exp_elog_theta, beta_t, alpha, max_iter, tol)
        weights = batch.counts / _word_norms(_eps_pattern(batch), exp_elog_theta, beta_t)
    places = torch.stack([batch.word_ids, batch.rows])  # of the transposed (V, B) matrix; no need to coalesce
    transposed = torch.sparse_coo_tensor(places, weights, (batch.vocab_size, batch.num_documents),
                                         check_invariants=False)
    sstats = exp_elog_beta * torch.sparse.mm(transposed, exp_elog_theta).T
    return gamma, sstats


def _native_kernel(kernel: str, gamma: torch.Tensor) -> bool:
    """Whether ``local_step`` takes the C loop, for its ``kernel`` argument."""
    one_of("kernel", kernel, KERNELS)
    usable = gamma.device.type == "cpu" and gamma.dtype in (torch.float32, torch.float64) and native.available()
    if kernel == "native" and not usable:
        why = native.reason() or "it needs float32 or float64 tensors on the CPU"
        raise InputError(f"kernel 'native' cannot run here: {why}", argument="kernel")
    return kernel != "torch" and usable


_SHRINK = 0.75  # the working set shrinks to the moving documents once they are at most this fraction of it


def _coordinate_ascent(batch, gamma, exp_elog_theta, beta_t, alpha, max_iter, tol) -> None:
    """``local_step``'s loop, in place on ``gamma`` and ``exp_elog_theta`` ``(B, K)``.

    It works on a working set of documents (``rows``, ``sub``, ``g``, ``e``) that holds every moving one; a stopped
    document in it is still computed but its values are not taken (``live``), until the moving documents are at
    most ``_SHRINK`` of the set and it shrinks to them: fewer, larger products than shrinking at every stop."""
    rows, sub, g, e, live = torch.arange(batch.num_documents), batch, gamma, exp_elog_theta, None
    pattern = _eps_pattern(sub)
    for _ in range(max_iter):
        if rows.numel() == 0:
            break
        new = _gamma_update(sub, pattern, e, beta_t, alpha)
        moving = (new - g).abs_().mean(1) >= tol  # scikit-learn's mean_change; a NaN stops its document too
        new_e = _floored_exp(dirichlet_expectation(new))
        if live is None:
            g, e = new, new_e
        else:
            g, e = torch.where(live[:, None], new, g), torch.where(live[:, None], new_e, e)
            moving &= live
        still = int(moving.sum())
        if still > _SHRINK * rows.numel():
            live = None if still == rows.numel() else moving
            continue
        gamma[rows], exp_elog_theta[rows] = g, e
        rows, sub, g, e, live = rows[moving], sub.select(moving), g[moving], e[moving], None
        pattern = _eps_pattern(sub)
    if g is not gamma:
        gamma[rows], exp_elog_theta[rows] = g, e


def learning_rate(step: int, *, tau0: float, kappa: float) -> float:
    """``ρ_t = (τ0 + t)^(-κ)``, the weight of the ``t``-th minibatch (``t = 1, 2, ...``, as scikit-learn's
    ``n_batch_iter_``; Hoffman's ``onlineldavb`` counts from 0). ``κ ∈ (0.5, 1]`` makes ``Σ ρ_t = ∞`` and
    ``Σ ρ_t² < ∞`` (Robbins & Monro), ``τ0 ≥ 0`` slows the first steps."""
    return (tau0 + step) ** -kappa


def expected_log_topics(lam: torch.Tensor) -> torch.Tensor:
    """``E[log β_kw] = ψ(λ_kw) - ψ(Σ_w λ_kw)`` under ``q(β_k) = Dir(λ_k)``: ``(K, V)``."""
    return dirichlet_expectation(lam)


def floored_exp(log_values: torch.Tensor) -> torch.Tensor:
    """``exp(log_values)`` raised to at least ``_floor`` of their dtype, as a new tensor (``log_values`` kept): the
    local step's factors from log-weights the caller needs too, e.g. ``β̃`` from ``E[log β]``."""
    return _floored_exp(log_values.clone())


def exp_expected_log_topics(lam: torch.Tensor) -> torch.Tensor:
    """``β̃ = exp(E[log β])`` ``(K, V)``, the local step's topics, at least ``_floor`` of ``lam``'s dtype: in float32
    ``exp(E[log β_kw])`` of a word a topic never uses underflows to 0 (100 topics of 5,000 words after a few
    minibatches), which the local step would refuse."""
    return _floored_exp(expected_log_topics(lam))


def topics(lam: torch.Tensor) -> torch.Tensor:
    """The topics' posterior means ``E[β_kw] = λ_kw / Σ_w λ_kw``: ``(K, V)``, each row a distribution over words."""
    lam = _check_topics_matrix("lam", lam)
    return lam / lam.sum(1, keepdim=True)


class OnlineLDA:
    """LDA by stochastic variational inference: the global parameters ``λ`` ``(K, V)`` and the step counter.

    ``alpha`` (``α``, prior of ``θ``) and ``eta`` (``η``, prior of ``β``) are fixed and symmetric, ``1 / K`` by
    default; ``tau0`` and ``kappa`` set ``ρ_t``; ``total_documents`` is the corpus size ``D``; ``max_iter`` and
    ``tol`` are the local step's. These are scikit-learn's ``doc_topic_prior``, ``topic_word_prior``,
    ``learning_offset``, ``learning_decay``, ``total_samples``, ``max_doc_update_iter`` and ``mean_change_tol``,
    with its defaults. Randomness is a ``numpy.random.RandomState(seed)`` drawn in scikit-learn's order, so that
    ``seed`` gives the stream of its ``random_state=seed``: ``λ ~ Gamma(100, 1/100)`` elementwise (unless ``lam`` is
    given), then each update's initial ``γ ~ Gamma(100, 1/100)`` ``(B, K)``.

    ``dtype`` (``lam``, the counts and the local step follow it; the bounds are float64 whatever it is): torch's
    default dtype unless given. float32 is the fast one: on 20 Newsgroups (K = 50, B = 256, one pass, one thread)
    it updates about 1.6 times as fast as float64, and its held-out perplexity is within 0.02% of float64's;
    float64 gives scikit-learn's λ to 1e-5 relative (1e-10 with scikit-learn's own digamma:
    ``tests/test_topics_lda.py``).
    """

    def __init__(self, num_topics: int, vocab_size: int, *, total_documents: int, alpha: float | None = None,
                 eta: float | None = None, tau0: float = 10.0, kappa: float = 0.7, max_iter: int = 100,
                 tol: float = 1e-3, seed: int = 0, lam: torch.Tensor | None = None,
                 dtype: torch.dtype | None = None):
        check_positive(num_topics=num_topics, vocab_size=vocab_size, total_documents=total_documents)
        self.alpha = 1.0 / num_topics if alpha is None else alpha
        self.eta = 1.0 / num_topics if eta is None else eta
        check_positive_float(eta=self.eta, kappa=kappa)
        _check_local_settings(self.alpha, max_iter, tol)
        if not 0.5 < kappa <= 1.0:
            raise InputError(f"kappa must be in (0.5, 1], got {kappa!r}", argument="kappa")
        if isinstance(tau0, bool) or not isinstance(tau0, (int, float)) or not 0 <= tau0 < math.inf:
            raise InputError(f"tau0 must be a finite number >= 0, got {tau0!r}", argument="tau0")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        one_of("dtype", dtype, (torch.float64, torch.float32))
        check_seed(seed)
        self.tau0, self.kappa, self.total_documents = float(tau0), float(kappa), total_documents
        self.max_iter, self.tol, self.dtype = max_iter, tol, dtype
        self.random_state = np.random.RandomState(seed)
        if lam is None:
            lam = torch.from_numpy(self.random_state.gamma(100.0, 0.01, (num_topics, vocab_size)))
        self.lam = _check_topics_matrix("lam", lam, vocab_size).to(dtype).clone()
        if self.lam.shape[0] != num_topics:
            raise InputError(f"lam must have {num_topics} rows (topics), got {self.lam.shape[0]}", argument="lam")
        self.num_updates = 0
        self.exp_elog_beta = exp_expected_log_topics(self.lam)

    def update(self, batch, *, initial_gamma: torch.Tensor | None = None) -> torch.Tensor:
        """One step on a minibatch of ``B`` documents (a ``SparseBatch`` or dense ``(B, V)``); returns its ``γ``.

        ``λ̂ = η + (D / B) s`` with ``s`` the local step's statistics, then ``λ ← (1 - ρ_t) λ + ρ_t λ̂`` with
        ``t = num_updates + 1`` (scikit-learn's ``partial_fit`` on one batch). ``initial_gamma`` replaces the draw
        (which is then not made)."""
        batch = as_batch(batch, dtype=self.dtype)
        if batch.vocab_size != self.lam.shape[1]:
            raise InputError(f"batch has {batch.vocab_size} words, the model {self.lam.shape[1]}", argument="batch")
        if initial_gamma is None:
            shape = (batch.num_documents, self.lam.shape[0])
            initial_gamma = torch.from_numpy(self.random_state.gamma(100.0, 0.01, shape))
        gamma, sstats = local_step(batch, self.exp_elog_beta, self.alpha, initial_gamma=initial_gamma,
                                   max_iter=self.max_iter, tol=self.tol)
        rho = learning_rate(self.num_updates + 1, tau0=self.tau0, kappa=self.kappa)
        target = self.eta + (self.total_documents / batch.num_documents) * sstats
        self.lam.mul_(1.0 - rho).add_(target, alpha=rho)
        self.num_updates += 1
        self.exp_elog_beta = exp_expected_log_topics(self.lam)
        return gamma

    def transform(self, x) -> torch.Tensor:
        """``γ`` ``(B, K)`` of documents under the current topics, from ``γ = 1`` (scikit-learn's
        ``transform(normalize=False)``)."""
        return local_step(x, self.exp_elog_beta, self.alpha, max_iter=self.max_iter, tol=self.tol)[0]

    def topics(self) -> torch.Tensor:
        """``E[β]`` ``(K, V)``."""
        return topics(self.lam)

    def perplexity(self, x, *, total_documents: int | None = None) -> float:
        """``perplexity(x, λ, α, η)`` with this model's settings."""
        return perplexity(x, self.lam, self.alpha, self.eta, max_iter=self.max_iter, tol=self.tol,
                          total_documents=total_documents)


def _check_gamma(gamma, batch: SparseBatch, num_topics: int) -> torch.Tensor:
    gamma = torch.as_tensor(gamma)
    if gamma.shape != (batch.num_documents, num_topics) or not torch.isfinite(gamma).all() or (gamma <= 0).any():
        raise InputError(f"gamma must be finite, > 0 and of shape {(batch.num_documents, num_topics)}, got shape "
                         f"{tuple(gamma.shape)}", argument="gamma")
    return gamma.to(torch.float64)


def document_bounds(x, gamma: torch.Tensor, log_topics: torch.Tensor, alpha: float) -> torch.Tensor:
    """Each document's bound given ``q(θ_d) = Dir(γ_d)`` and log topic weights ``b`` ``(K, V)``: ``(B,)`` float64,

        L_d = Σ_w n_dw log Σ_k exp(E[log θ_dk] + b_kw) - KL(Dir(γ_d) || Dir(α 1_K)),

    ``q(z)`` optimised out (it is ``φ_dwk ∝ exp(E[log θ_dk] + b_kw)``); no multinomial coefficient, as the neural
    models' likelihood. With ``b = E[log β]`` it is document ``d``'s term of scikit-learn's ``_approx_bound`` (a
    lower bound on ``E_q(β)[log p(w_d | β)]``); with ``b = log E[β]``, a lower bound on ``log p(w_d | β = E[β])``
    (``document_elbos`` says more). Computed in float64 with ``log Σ_k exp(a_k + b_k) = max a + max b +
    log Σ_k exp(a_k - max a) exp(b_k - max b)``, every factor ≤ 1: the sum underflows only where, for a document
    and one of its words, every topic is more than ~700 nats below the two maxima together.
    """
    log_topics = torch.as_tensor(log_topics).to(torch.float64)
    if log_topics.dim() != 2 or not torch.isfinite(log_topics).all():
        raise InputError(f"log_topics must be finite (K, V), got shape {tuple(log_topics.shape)}",
                         argument="log_topics")
    batch = as_batch(x, dtype=torch.float64)
    if batch.vocab_size != log_topics.shape[1]:
        raise InputError(f"x has {batch.vocab_size} words, log_topics {log_topics.shape[1]}", argument="log_topics")
    check_positive_float(alpha=alpha)
    gamma = _check_gamma(gamma, batch, log_topics.shape[0])
    elog_theta = dirichlet_expectation(gamma)
    top_theta, top_word = elog_theta.max(1).values, log_topics.max(0).values  # (B,), (V,)
    sums = torch.sparse.sampled_addmm(batch.csr(), (elog_theta - top_theta[:, None]).exp(),
                                      (log_topics - top_word).exp(), beta=0.0).values()
    rows = batch.rows
    log_norms = sums.log() + top_theta[rows] + top_word[batch.word_ids]
    words = torch.zeros(batch.num_documents, dtype=torch.float64).index_add_(0, rows, batch.counts * log_norms)
    prior = Dirichlet(torch.full_like(gamma, float(alpha)), validate_args=False)
    return words - kl_divergence(Dirichlet(gamma, validate_args=False), prior)


def topic_bound(lam: torch.Tensor, eta: float) -> torch.Tensor:
    """The global term ``E_q[log p(β) - log q(β)] = -Σ_k KL(Dir(λ_k) || Dir(η 1_V))``: a float64 scalar."""
    lam = _check_topics_matrix("lam", lam).to(torch.float64)
    check_positive_float(eta=eta)
    prior = Dirichlet(torch.full_like(lam, float(eta)), validate_args=False)
    return -kl_divergence(Dirichlet(lam, validate_args=False), prior).sum()


def bound(x, gamma: torch.Tensor, lam: torch.Tensor, alpha: float, eta: float, *,
          total_documents: int | None = None) -> torch.Tensor:
    """The corpus ELBO of ``B`` documents, scikit-learn's ``_approx_bound``: a float64 scalar, in nats,

        L = c Σ_d L_d(γ_d, E[log β]) - Σ_k KL(Dir(λ_k) || Dir(η 1_V)),

    ``L_d`` as in ``document_bounds``, and ``c = D / B`` with ``total_documents = D`` (its ``sub_sampling=True``:
    the documents stand for a corpus of ``D``), else ``c = 1``. The topics' term enters once, whatever ``B``."""
    lam = _check_topics_matrix("lam", lam).to(torch.float64)
    batch = as_batch(x, dtype=torch.float64)
    documents = document_bounds(batch, gamma, expected_log_topics(lam), alpha).sum()
    if total_documents is not None:
        check_positive(total_documents=total_documents)
        documents = documents * (total_documents / batch.num_documents)
    return documents + topic_bound(lam, eta)


def perplexity(x, lam: torch.Tensor, alpha: float, eta: float, *, max_iter: int = 100, tol: float = 1e-3,
               total_documents: int | None = None) -> float:
    """scikit-learn's ``LatentDirichletAllocation.perplexity``: ``exp(-L / N)``, with ``γ`` from the local step
    (from ``γ = 1``, in ``lam``'s dtype) under ``β̃ = exp(E[log β])``, ``L = bound(...)`` and ``N = Σ_dw n_dw``
    (times ``D / B`` with ``total_documents``, its ``sub_sampling=True``).

    The bound holds the topics' global term once, so this is not a per-document quantity: for held-out
    documents, comparable with per-document ELBOs, use ``document_elbos`` and ``metrics.perplexities``."""
    lam = _check_topics_matrix("lam", lam)
    batch = as_batch(x, dtype=lam.dtype)
    gamma = local_step(batch, expected_log_topics(lam).exp(), alpha, max_iter=max_iter, tol=tol)[0]
    words = float(batch.counts.double().sum())
    if total_documents is not None:
        check_positive(total_documents=total_documents)
        words *= total_documents / batch.num_documents
    return math.exp(-float(bound(batch, gamma, lam, alpha, eta, total_documents=total_documents)) / words)


def document_elbos(x, lam: torch.Tensor, alpha: float, *, topics: str = "point", max_iter: int = 100,
                   tol: float = 1e-3) -> torch.Tensor:
    """Per-document ELBOs ``(B,)`` (float64, nats), without the topics' global term: ``γ`` from the local step, then
    ``document_bounds``, the topics ``β`` taken as

    * ``"point"`` (default): the point estimate ``E[β] = λ / Σ_w λ``, a lower bound on ``log p(w_d | β = E[β])``
      (``φ_dwk ∝ exp(E[log θ_dk]) E[β_kw]``). It is the neural topic models' per-document ELBO (issue 14: a
      decoder with point topics, the multinomial coefficient left out), so the two are comparable;
    * ``"expected_log"``: ``E[log β]`` under ``q(β)``, document ``d``'s term of scikit-learn's bound, a lower bound on
      ``E_q(β)[log p(w_d | β)]``.

    ``exp(E[log β_kw]) ≤ E[β_kw]`` (Jensen), so at any one ``γ`` "point" is the larger; but the bound is not concave
    in ``γ`` and the two local steps may stop in different local optima, so a few documents can come out the other
    way (3 of 500 held-out 20 Newsgroups documents, by under 0.5 nats, with 10 topics).
    """
    lam = _check_topics_matrix("lam", lam)
    one_of("topics", topics, TOPIC_ESTIMATES)
    log_topics = (lam / lam.sum(1, keepdim=True)).log() if topics == "point" else expected_log_topics(lam)
    gamma = local_step(x, log_topics.exp(), alpha, max_iter=max_iter, tol=tol)[0]
    return document_bounds(x, gamma, log_topics, alpha)
