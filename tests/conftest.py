"""Every test runs in float64 with the same seed; statistical tests state their own false-failure rate."""

import os

import pytest
import torch

# One intra-op thread: the tests use small tensors, and on a machine whose cores are busy with other work, two
# OpenMP threads that wait for each other at every operation make them up to a hundred times slower. Subprocesses
# (the CLI tests) inherit it through the environment.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def float64_and_seed():
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(dtype)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """No test reaches the internet, whatever machine it runs on: every download URL of the data sets' modules
    points at a file that does not exist (a test of downloading points the ones it needs at files it wrote)."""
    from elbo.models.images import datasets as images
    from elbo.models.topics import datasets as documents

    nowhere = tmp_path_factory.getbasetemp() / "offline-mirror"
    for module in (images, documents):
        for name in module.URLS:
            monkeypatch.setitem(module.URLS, name, [(nowhere / f"{name}.gz").as_uri()])
