"""The local control socket as a client sees it: where it is, how a message is framed,
``call`` (one command, one reply) and ``subscribe`` (a stream of committed events and status).
A package of its own, importing nothing of the core, so the local CLI and the hall's web
process can talk to the daemon without loading it; the daemon's side of the socket is
``gated.app.control``."""

from gated.control.client import ControlError, call
from gated.control.stream import Subscription, subscribe
from gated.control.wire import MAX_MESSAGE, SOCKET_NAME, recv_all, socket_path

__all__ = ["MAX_MESSAGE", "SOCKET_NAME", "ControlError", "Subscription", "call", "recv_all",
           "socket_path", "subscribe"]
