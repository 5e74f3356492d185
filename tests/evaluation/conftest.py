"""One torch thread for these tests: their tensors are tiny, and on a shared 2-core machine
OpenMP threads spinning against other processes made them up to 8x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
