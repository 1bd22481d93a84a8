"""Fixtures shared by the test modules."""

import pytest
import torch


@pytest.fixture()
def one_thread():
    """Tiny models run fastest (and steadiest on a shared CPU) on one thread.

    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

