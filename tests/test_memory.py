from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from graphfraud import memory

# In a child process: the heap threshold it sets must not outlive the test.
_CHILD = """
import ctypes, numpy as np
from graphfraud.memory import release_freed_memory
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("RssAnon:"))
ctypes.CDLL(None).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: the 64 KB blocks go to the heap
blocks = [np.ones(8192) for _ in range(4096)]  # 256 MB of them
keep = np.ones(8192)  # a live block above them: the heap's top is not free
del blocks
before = rss_kb()
release_freed_memory()
print(before, rss_kb())
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_freed_heap_pages_go_back_to_the_os() -> None:
    """Blocks freed below a live one stay resident until trimmed; the trim returns them."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True
    ).stdout
    before, after = (int(v) for v in out.split())
    assert before - after > 128 * 1024


def test_without_malloc_trim_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    memory.release_freed_memory()
