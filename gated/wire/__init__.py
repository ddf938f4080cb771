"""What crosses a trust boundary as JSON (MQTT commands and lists, the local control socket,
the hall's HTTP bodies): parsed with bounds, so bad input is a clear refusal, never a
traceback. Imports nothing of the core.

``gated.wire.contract`` (imported on its own, never from here: it loads jsonschema, which the
daemon does not need) checks MQTT payloads against the contract, ``asyncapi.yaml``."""

from gated.wire.payload import MAX_DEPTH, PayloadError, loads, loads_object

__all__ = ["MAX_DEPTH", "PayloadError", "loads", "loads_object"]
