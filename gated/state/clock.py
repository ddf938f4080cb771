"""Is the system clock synchronised? A Pi has no real-time clock: after a power cut its time
can be far off until NTP answers, so events carry ``clock_ok`` and retention purges wait.

Asks the kernel (``adjtimex``): ``TIME_ERROR`` or the ``STA_UNSYNC`` status bit mean "not
synchronised", which is what chrony, ntpd and systemd-timesyncd clear once they have a source.
The answer is cached for a few seconds; anything that cannot be read counts as unsynchronised.
"""

from __future__ import annotations

import ctypes
import threading
import time

CACHE_S = 10.0
TIME_ERROR = 5
STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("constant", ctypes.c_long),
                ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long),
                ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
                ("shift", ctypes.c_int), ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long),
                ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long),
                ("tai", ctypes.c_int), ("_pad", ctypes.c_int * 11)]


_lock = threading.Lock()
_cache: tuple[float, bool] | None = None
_libc: ctypes.CDLL | None = None


def _adjtimex_lib() -> ctypes.CDLL:
    """The C library, loaded once: ``find_library`` runs ``ldconfig -p`` in a child process,
    which the state thread must not pay for every few seconds."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)  # the running process's libc
    return _libc


def kernel_synchronised() -> bool:
    """One uncached reading of the kernel's NTP state; False when it cannot be read."""
    try:
        libc = _adjtimex_lib()
        tx = _Timex()
        state = int(libc.adjtimex(ctypes.byref(tx)))
    except (OSError, AttributeError):
        return False
    return state not in (-1, TIME_ERROR) and not tx.status & STA_UNSYNC


def clock_synchronised() -> bool:
    """Cached for ``CACHE_S`` seconds: called for every batch of events."""
    global _cache
    now = time.monotonic()
    with _lock:
        if _cache is not None and now - _cache[0] < CACHE_S:
            return _cache[1]
    value = kernel_synchronised()
    with _lock:
        _cache = (now, value)
    return value
