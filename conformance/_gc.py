"""Pausing Python's cyclic garbage collector while many small objects are built.

Parsing a 1M-series exposition or 200k log records allocates millions of
dicts and tuples that all stay alive. With the collector on, every few hundred
allocations start a young-generation collection, and the growing heap
triggers full ones that walk every object built so far, for nothing: none of
them is garbage. Turned back on naively, the collector would then scan the
whole young generation (everything just built) on the next allocations.

So the collector is disabled for the build, and at the end everything alive
is moved to the oldest generation without a scan (``gc.freeze()`` followed by
``gc.unfreeze()``, the moves CPython documents for long-lived objects), where
it is looked at only by the next full collection. Reference counting still
frees whatever is dropped; only cycles wait for that full collection.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["cyclic_gc_paused"]


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block; enable it again after.

    Nested use is fine: only the outermost block that found the collector
    enabled turns it back on. When the process keeps frozen objects of its own
    (``gc.get_freeze_count()``), they are left frozen and nothing is moved.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
