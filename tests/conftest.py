"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: small grids are fastest (and steadiest on a busy machine) that way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
