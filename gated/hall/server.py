"""``gated hall``: the hall's web service as a process of its own, on uvicorn (h11, asyncio).

Binds ``[hall] listen`` (the hall's LAN address), with TLS when ``tls_cert_file`` and
``tls_key_file`` are set. SIGTERM stops it cleanly; systemd restarts it if it dies
(``systemd/gated-hall.service``). The daemon does not depend on it in any way.
"""

from __future__ import annotations

import ctypes
import getpass
import sys

import structlog
import uvicorn

from gated.config import HallView
from gated.hall.app import Hall
from gated.hall.auth import hash_secret
from gated.hall.voice import Voice

log = structlog.get_logger(__name__)


def build(view: HallView) -> Hall:
    voice = Voice(view.hall.voice, view.hall.voice.cache_dir or view.state_dir / "voice")
    return Hall(view, voice=voice)


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc mallopt parameters


def keep_memory_small() -> None:
    """glibc raises its mmap threshold each time a large block is freed, after which blocks of
    that size come from the heap and stay resident: every sign-in's 16 MiB scrypt buffer added
    16 MiB to the RSS for good (measured: 42.6 -> 61.0 MiB after 20 sign-ins). A fixed
    threshold returns such buffers to the system; two arenas are plenty for a few threads.
    Elsewhere than glibc this does nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        log.info("hall_mallopt_unavailable")


def run_hall(view: HallView) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean stop."""
    keep_memory_small()
    hall = build(view)
    host, port = view.hall.host_port
    h = view.hall
    config = uvicorn.Config(
        hall.app, host=host, port=port, http="h11", loop="asyncio", ws="none",
        lifespan="on", log_config=None, access_log=False, server_header=False,
        timeout_keep_alive=10, timeout_graceful_shutdown=2, backlog=128,
        h11_max_incomplete_event_size=16 * 1024,
        ssl_certfile=str(h.tls_cert_file) if h.tls_cert_file else None,
        ssl_keyfile=str(h.tls_key_file) if h.tls_key_file else None)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


def passwd(stdin: bool = False) -> int:
    """Ask for a PIN twice (or read one line from stdin) and print its ``secret``."""
    if stdin:
        pin = sys.stdin.readline().rstrip("\n")
        again = pin
    else:
        pin = getpass.getpass("PIN or password: ")
        again = getpass.getpass("again: ")
    if pin != again:
        print("gated: the two entries differ", file=sys.stderr)
        return 1
    try:
        print(hash_secret(pin))
    except ValueError as e:
        print(f"gated: {e}", file=sys.stderr)
        return 1
    return 0
