"""The county link over MQTT (paho): the ``service`` that wires a ``connection``, the outbox
``drain``, the retained ``status``, commands and list sync (``rpc``); and ``monitor``, the
centre's live table of booths."""

from gated.uplink.monitor import run_monitor
from gated.uplink.service import Uplink

__all__ = ["Uplink", "run_monitor"]
