"""The local control socket as a client sees it: where it is, how a message is framed, and
``call`` (one command, one reply). A package of its own, importing nothing of the core, so the
local CLI and the hall's web process can talk to the daemon without loading it; the daemon's
side of the socket is ``gated.app.control``."""

from gated.control.client import ControlError, call
from gated.control.wire import MAX_MESSAGE, SOCKET_NAME, recv_all, socket_path

__all__ = ["MAX_MESSAGE", "SOCKET_NAME", "ControlError", "call", "recv_all", "socket_path"]
