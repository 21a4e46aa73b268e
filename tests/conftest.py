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


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups
def pytest_collection_modifyitems(config, items):
    grouped = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if item.path.name in E2E_FILES:
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.unit)
        shared = _shared_fixtures(item)
        if grouped and shared and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(f"{item.path.stem}:{','.join(shared)}"))


@pytest.hookimpl(tryfirst=True)  # before xdist's worker sends the ids of its tests to be scheduled
def pytest_collection_finish(session):
    """``--dist loadgroup`` schedules by the suffix ``@GROUP`` of a test's id, which xdist (3.8) writes where pytest
    9.2 no longer reads it (pytest-xdist issue 1386): on a worker of pytest >= 9.2, the suffix is written here."""
    if not getattr(session.config.option, "loadgroup", False):  # set on xdist's workers
        return
    from _pytest.nodeid import NodeId

    for item in session.items:
        groups = sorted({str(mark.args[0]) for mark in item.iter_markers("xdist_group")})
        if groups and hasattr(item, "_id") and "@" not in item.nodeid.rsplit("]", 1)[-1]:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")


def _shared_fixtures(item) -> list[str]:
    """The module- and class-scoped fixtures that ``item`` uses (with their parameter, for a parametrized one): under
    ``pytest -n N --dist loadgroup`` (``make test``) the tests of a module that share them run in one worker, so that
    each is computed once, as in one process."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    params = getattr(getattr(item, "callspec", None), "params", {})
    return sorted(f"{name}={params[name]}" if name in params else name for name, defs in definitions.items()
                  if defs and defs[-1].scope in ("module", "class"))


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
