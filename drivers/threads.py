"""Threads named where ``top -H``, ``ps -L`` and ``/proc/<pid>/task/*/comm`` can see them.

Python's thread names live in Python only: the kernel calls every thread of the daemon
``python3``, so local IT cannot tell the state thread from a device poller in ``top -H``.
``named_thread`` starts a thread that gives itself its name in the kernel too (``prctl``, 15
bytes at most: longer names are cut). ``name_this_thread`` does it for a thread another library
started (paho's network loop, the log writer).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

PR_SET_NAME = 15
KERNEL_NAME_MAX = 15


@cache
def _prctl() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def name_this_thread(name: str) -> None:
    """Name the calling thread in the kernel (a no-op where prctl is not available)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:KERNEL_NAME_MAX]), 0, 0, 0)


def named_thread(target: Callable[..., object], name: str, *, args: tuple[Any, ...] = (),
                 daemon: bool = True) -> threading.Thread:
    """A ``threading.Thread`` (not started) that takes ``name`` in the kernel as it starts."""
    def run() -> None:
        name_this_thread(name)
        target(*args)
    return threading.Thread(target=run, name=name, daemon=daemon)
