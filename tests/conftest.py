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


class HostReads:
    """Counts the Python-level calls that read a tensor back to the host (a device sync on a GPU) or copy
    host data into a new tensor, by name; `reads` and `copies` are the totals."""

    READS = ("item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__float__", "__int__", "__index__")
    COPIES = ("tensor", "as_tensor", "from_numpy")

    def __init__(self, monkeypatch):
        self.calls: dict[str, int] = {}
        for name in self.READS:
            self._wrap(monkeypatch, torch.Tensor, name, name)
        self._wrap(monkeypatch, torch, "nonzero", "torch.nonzero")
        for name in self.COPIES:
            self._wrap(monkeypatch, torch, name, "torch." + name)
        get, to = torch.Tensor.__getitem__, torch.Tensor.to

        def getitem(t, idx):
            parts = idx if isinstance(idx, tuple) else (idx,)
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in parts):
                self._count("boolean index")
            return get(t, idx)

        def to_(t, *args, **kwargs):  # a literal "cpu" target (a device taken from a tensor is not counted)
            if any(isinstance(a, str) and a == "cpu" for a in (*args, kwargs.get("device"))):
                self._count("to(cpu)")
            return to(t, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, "__getitem__", getitem)
        monkeypatch.setattr(torch.Tensor, "to", to_)

    def _count(self, label: str) -> None:
        self.calls[label] = self.calls.get(label, 0) + 1

    def _wrap(self, monkeypatch, owner, name: str, label: str) -> None:
        fn = getattr(owner, name)

        def wrapped(*args, **kwargs):
            self._count(label)
            return fn(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)

    def reset(self) -> None:
        self.calls.clear()

    @property
    def reads(self) -> int:
        return sum(n for k, n in self.calls.items() if not k.startswith("torch.") or k == "torch.nonzero")

    @property
    def copies(self) -> int:
        return sum(n for k, n in self.calls.items() if k.startswith("torch.") and k != "torch.nonzero")


@pytest.fixture
def host_reads(monkeypatch):
    """A `HostReads` counter patched into torch for the test (call `.reset()` after the warm-up)."""
    return HostReads(monkeypatch)
