"""Data parallelism: the shared noise of a global batch, and N processes computing what one does.

The multi-process tests start real process groups (gloo, on this machine's CPU) through ``elbo.distributed.launch``;
each takes ten to twenty seconds, most of it starting Python and torch in the new processes.
"""

import json

import pytest
import torch

from elbo import distributed, estimators, evaluate, families, runs, train
from elbo.models.images.config import VAEConfig
from elbo.models.images.model import make_vae

pytestmark = pytest.mark.e2e

TINY = VAEConfig(latent_dims=(4,), hidden_dims=((16,),))
TWO_LAYERS = VAEConfig(latent_dims=(3, 2), hidden_dims=((8,), (8,)))
# 1350 training images in global batches of 100: every batch, the last one (50) too, splits evenly over 2 processes
CONFIG = train.TrainConfig(data="digits", model=TINY, objective="iwae", num_samples=3, estimator="dreg", epochs=3,
                           batch_size=100, lr=3e-3)
DDP_TIMEOUT = 300


def _model(config):
    return make_vae(VAEConfig(**{**config.__dict__, "image_shape": (4, 4), "likelihood": "bernoulli"}))


@pytest.mark.parametrize("config", [TINY, TWO_LAYERS], ids=["one-layer", "two-layer"])
def test_each_rank_draws_its_rows_of_the_global_batch_noise(config):
    """With the same random state, rank r's draw is block r of one process's draw for the whole batch (up to the
    last bits of the encoder's matrix products, which see fewer rows), and log q, the KL to the prior and the
    STL/DReG stop_gradient are q's own, on the rank's rows."""
    model, x = _model(config), torch.rand(6, 16)
    torch.manual_seed(1)
    z_whole = model.guide(x).rsample((5,))  # (K, B, D): one process, the whole global batch
    for rank in range(3):
        rows = distributed.block(6, rank, 3)
        q = model.guide(x[rows])
        torch.manual_seed(1)
        shared = families.SharedNoise(q, rank, 3)
        z = shared.rsample((5,))
        torch.testing.assert_close(z, z_whole[:, rows], rtol=1e-12, atol=1e-12)
        assert torch.equal(shared.log_prob(z), q.log_prob(z))
        assert torch.equal(estimators.stop_gradient(shared).log_prob(z),
                           estimators.stop_gradient(q).log_prob(z))
        if config is TINY:
            assert torch.equal(torch.distributions.kl_divergence(shared, model.prior()),
                               torch.distributions.kl_divergence(q, model.prior()))
        z.sum().backward()  # the path derivative reaches the encoder through the rank's own rows
        encoder = model.encoder if config is TINY else model.encoders[0]
        assert all(p.grad is not None for p in encoder.parameters())


def test_blocks_partition_the_rows_in_rank_order():
    for n in (0, 1, 7, 100):
        for world_size in (1, 2, 3):
            blocks = [range(n)[distributed.block(n, r, world_size)] for r in range(world_size)]
            assert [i for b in blocks for i in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_rank_seeds_differ_and_rank_0_keeps_the_seed():
    seeds = [distributed.rank_seed(7, r) for r in range(4)]
    assert seeds[0] == 7 and len(set(seeds)) == 4


def _checkpoint(path):
    return torch.load(path / "checkpoint.pt", weights_only=True)


def _metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(run, reference):
    """The parameters agree to float tolerance (the sums over the batch are added in another order); the random
    states, which decide the permutation, the binarization and the noise, are identical."""
    a, b = _checkpoint(run), _checkpoint(reference)
    assert a["epoch"] == b["epoch"]
    for name in b["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=1e-9, atol=1e-9, msg=name)
    for name in b["rng"]:
        assert torch.equal(a["rng"][name], b["rng"][name]), name
    for m, n in zip(_metrics(run), _metrics(reference), strict=True):  # one line per epoch: only rank 0 writes
        assert m["epoch"] == n["epoch"]
        for key in ("train_bound", "elbo"):  # validation draws each rank's noise from a seed of its own
            assert m[key] == pytest.approx(n[key], rel=1e-9), key


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: CONFIG trained by a single process, in float64 like the runs it is compared with."""
    torch.set_default_dtype(torch.float64)
    return train.train(CONFIG, tmp_path_factory.mktemp("one") / "run", progress=False)


@pytest.mark.timeout(DDP_TIMEOUT)
def test_two_processes_reach_the_parameters_of_one_with_the_same_global_batch(tmp_path, one_process):
    """Each of 2 processes trains on half of every global batch of 100 (DDP averages their gradients), with the
    binarization and the noise z of its rows drawn as one process draws them: after 3 epochs (42 steps) of IWAE
    with DReG, the parameters are those of the single process."""
    _assert_same_run(train.train(CONFIG, tmp_path / "run", nproc=2, progress=False), one_process)


@pytest.mark.timeout(DDP_TIMEOUT)
def test_a_two_process_run_resumes_exactly(tmp_path, one_process):
    """Stopped after its first epoch and resumed by 2 new processes, a run ends where the uninterrupted one does."""
    path = train.train(CONFIG, tmp_path / "run", nproc=2, progress=False, time_limit=0)
    assert _checkpoint(path)["epoch"] == 1 and len(_metrics(path)) == 1
    _assert_same_run(train.resume(path, nproc=2, progress=False), one_process)


@pytest.mark.timeout(DDP_TIMEOUT)
def test_importance_sampling_is_sharded_over_processes_and_gathered(one_process):
    """2 processes each estimate log p(x) on a contiguous half of the test images with their own noise
    (``rank_seed``), and the gathered values are those of the two halves computed here with the same seeds."""
    result = evaluate.evaluate_run(one_process, num_samples=40, iwae_samples=(), max_points=101, seed=3, nproc=2)
    run = runs.load_run(one_process)
    test = run.data.test[:101]
    values = []
    for rank in (0, 1):
        torch.manual_seed(distributed.rank_seed(3, rank))
        values.append(evaluate.iwae_per_point(run.model, run.model.guide, test[distributed.block(101, rank, 2)], 40))
    mean, stderr = evaluate.mean_and_stderr(torch.cat(values))
    assert result["processes"] == 2 and result["num_points"] == 101
    assert result["log_likelihood"]["mean"] == pytest.approx(mean, rel=1e-12)
    assert result["log_likelihood"]["stderr"] == pytest.approx(stderr, rel=1e-9)
    assert json.loads((one_process / "evaluation.json").read_text()) == json.loads(json.dumps(result))


def test_a_global_batch_that_does_not_split_evenly_is_refused(tmp_path):
    with pytest.raises(ValueError, match="batch_size 100 is the global batch, .* a multiple of their number, 3"):
        train.train(CONFIG, tmp_path / "run", nproc=3)
    assert not (tmp_path / "run").exists()
