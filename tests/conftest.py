"""Every test runs in float64 with the same seed; statistical tests state their own false-failure rate. Each leaves
the process as it found it (torch's threads, the working directory, the environment), so the tests can share
processes (pytest-xdist's workers) in any order. A test is ``unit`` unless its file or itself is marked ``e2e``."""

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
def process_state_restored():
    """torch's threads, the working directory and the environment as they were before the test, whatever the test
    (or an ``elbo`` command it ran in this process, ``--threads``) changed."""
    threads, directory, environment = torch.get_num_threads(), os.getcwd(), dict(os.environ)
    yield
    torch.set_num_threads(threads)
    os.chdir(directory)
    if os.environ != environment:
        for name in set(os.environ) - set(environment):
            del os.environ[name]
        os.environ.update(environment)


# Files of end-to-end tests that cannot carry their own `pytestmark` here (the others say `pytestmark = e2e`).
E2E_FILES = ("test_examples.py", "test_tutorials.py")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in E2E_FILES:
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.unit)


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
