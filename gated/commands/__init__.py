"""Every command a booth accepts, whichever way it comes (MQTT, the local socket): the
``registry`` (dispatch, signatures, nonces, refusals) and the ``table`` of commands."""

from gated.commands.registry import CommandRegistry, load_command_key, sign_command
from gated.commands.table import register_commands

__all__ = ["CommandRegistry", "load_command_key", "register_commands", "sign_command"]
