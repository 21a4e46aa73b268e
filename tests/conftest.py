"""Every test runs in float64 with the same seed; statistical tests state their own false-failure rate."""

import pytest
import torch


@pytest.fixture(autouse=True)
def float64_and_seed():
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(dtype)
