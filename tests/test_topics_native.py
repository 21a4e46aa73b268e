"""The local step of LDA in C (elbo.models.topics.native) against the tensor code it replaces: ψ, γ and the
statistics to float64 rounding, the same in any number of threads, float32 following float64, and a clear error
where it cannot run."""

import numpy as np
import pytest
import torch

from elbo.errors import InputError
from elbo.models.topics import native
from elbo.models.topics.lda import exp_expected_log_topics, local_step
from elbo.models.topics.synthetic import generate_lda_corpus

pytestmark = pytest.mark.skipif(not native.available(), reason=f"no native local step: {native.reason()}")


@pytest.fixture(scope="module")
def documents():
    """300 documents of Poisson lengths (mean 40) over 200 words, and topics away from the truth."""
    data = generate_lda_corpus(300, 200, 8, words_per_document=40, lengths="poisson", alpha=0.1, eta=0.05, seed=5)
    lam = torch.from_numpy(np.random.RandomState(1).gamma(100.0, 0.01, (8, 200))) + data.topics * 50
    return data.documents, exp_expected_log_topics(lam)


def test_digamma_log_and_exp_equal_torchs_to_a_few_units_of_the_last_place():
    x = torch.cat([torch.logspace(-4, 6, 500, dtype=torch.float64), torch.tensor([0.02, 1.0, 9.999, 10.0, 10.001])])
    torch.testing.assert_close(native.elementwise("digamma", x), torch.special.digamma(x), rtol=4e-15, atol=4e-15)
    wide = torch.logspace(-300, 300, 2000, dtype=torch.float64)
    torch.testing.assert_close(native.elementwise("log", wide), wide.log(), rtol=4e-16, atol=0)
    exponents = torch.cat([torch.linspace(-700, 700, 4001, dtype=torch.float64), torch.tensor([0.0, -35.3, -282.5])])
    torch.testing.assert_close(native.elementwise("exp", exponents), exponents.exp(), rtol=4e-16, atol=0)
    special = torch.tensor([float("nan"), float("inf")], dtype=torch.float64)
    assert native.elementwise("log", special)[0].isnan() and native.elementwise("log", special)[1] == float("inf")
    assert native.elementwise("exp", special[:1]).isnan().all() and native.elementwise("digamma", special[:1]).isnan()


@pytest.mark.parametrize("alpha, tol, max_iter", [(0.1, 1e-3, 100), (0.02, 1e-6, 300), (1.0, 1e-3, 1), (0.1, 1e-3, 0)])
def test_native_equals_the_tensor_code_in_float64(documents, alpha, tol, max_iter):
    batch, beta = documents
    start = torch.from_numpy(np.random.RandomState(2).gamma(100.0, 0.01, (300, 8)))
    settings = dict(initial_gamma=start, max_iter=max_iter, tol=tol)
    gamma, sstats = local_step(batch, beta, alpha, kernel="native", **settings)
    gamma_t, sstats_t = local_step(batch, beta, alpha, kernel="torch", **settings)
    torch.testing.assert_close(gamma, gamma_t, rtol=1e-11, atol=0)
    torch.testing.assert_close(sstats, sstats_t, rtol=1e-11, atol=1e-300)
    assert float(sstats.sum()) == pytest.approx(float(batch.counts.sum()), rel=1e-9)  # Σ_k φ_dwk = 1


def test_threads_split_the_documents_without_changing_a_bit(documents):
    batch, beta = documents
    gammas, before = [], torch.get_num_threads()
    try:
        for threads in (1, 2, 7):
            torch.set_num_threads(threads)
            gammas.append(local_step(batch, beta, 0.1, kernel="native"))
    finally:
        torch.set_num_threads(before)
    for gamma, sstats in gammas[1:]:
        assert torch.equal(gamma, gammas[0][0]) and torch.equal(sstats, gammas[0][1])


def test_float32_follows_float64(documents):
    batch, beta = documents
    gamma64 = local_step(batch, beta, 0.1, tol=1e-8, max_iter=500, kernel="native")[0]
    gamma32 = local_step(batch, beta.float(), 0.1, tol=1e-8, max_iter=500, kernel="native")[0]
    assert gamma32.dtype == torch.float32
    torch.testing.assert_close(gamma32.double(), gamma64, rtol=1e-4, atol=1e-4)


def test_kernel_is_checked_and_native_says_why_it_cannot_run(documents, monkeypatch):
    batch, beta = documents
    with pytest.raises(InputError, match="kernel must be one of 'auto', 'native', 'torch', got 'fast'"):
        local_step(batch, beta, 0.1, kernel="fast")
    monkeypatch.setitem(native._state, "library", None)
    monkeypatch.setitem(native._state, "reason", "no C compiler 'cc' on the PATH (set CC)")
    with pytest.raises(InputError, match="kernel 'native' cannot run here: no C compiler"):
        local_step(batch, beta, 0.1, kernel="native")
    torch.testing.assert_close(local_step(batch, beta, 0.1)[0], local_step(batch, beta, 0.1, kernel="torch")[0])


def test_a_transposed_initial_gamma_is_read_in_its_own_order(documents):
    """The C loop reads γ as rows of K: a start given as a transposed view must give what its contiguous copy does."""
    batch, beta = documents
    start = torch.from_numpy(np.random.RandomState(4).gamma(100.0, 0.01, (8, 300))).T
    assert not start.is_contiguous()
    gamma = local_step(batch, beta, 0.1, initial_gamma=start, kernel="native")[0]
    copied = local_step(batch, beta, 0.1, initial_gamma=start.contiguous(), kernel="native")[0]
    torch.testing.assert_close(gamma, copied, rtol=0, atol=0)
    torch.testing.assert_close(gamma, local_step(batch, beta, 0.1, initial_gamma=start, kernel="torch")[0],
                               rtol=1e-11, atol=0)
