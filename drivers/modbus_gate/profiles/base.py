"""What a relay board profile tells the gate: the frames that switch, pulse and read it.

A profile (``drivers/modbus_gate/profiles/<board>.py``) is a settings mixin (its
``profile = "..."`` literal and the keys only that board has) and a ``RelayProtocol`` that
builds the board's frames. ``drivers.modbus_gate.board.GateBoard`` builds every frame once
at construction and owns the pulse bookkeeping, so a profile is only bytes:

- ``switch(relay, on)``: a level change, checked by its parser (an echo, usually);
- ``pulse(relay, ms)``: a pulse the *board* times (Waveshare's flash, the register family's
  delayed-off), with the length the board will really give; ``None`` when the board has no
  timer, and then the host times the pulse (on, then off ``pulse_ms`` later: a crash or a cut
  RS-485 line in between leaves the relay energised until the driver reopens);
- ``read(numbers)``: one request covering every wired input and a parser that maps input
  number -> state (before wiring polarity);
- ``setup(send)``: what must be written once when the driver opens (a board shipped with
  its inputs driving its relays must have that turned off), with a note for the log each;
- ``identify(send)``: read-only questions that tell this board from another (``gated probe``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drivers.modbus.registers import parse_read_bits_reply, parse_read_registers_reply, read_request
from drivers.modbus.rtu import FunctionCode

Parser = Callable[[bytes, bytes], Any]
Frame = tuple[bytes, Parser]
Send = Callable[[bytes, Parser], Any]
InputParser = Callable[[bytes, bytes], Mapping[int, bool]]


class RelayProtocol(ABC):
    """One board's bytes; built from the gate's settings (``address`` and the profile's)."""

    #: the board times its own pulses (``pulse`` never returns None)
    board_timed: bool = False

    def __init__(self, config: Any) -> None:
        self.config = config
        self.address: int = config.address

    @abstractmethod
    def switch(self, relay: int, on: bool) -> Frame:
        """Relay ``relay`` (the number in ``coils``) on or off."""

    def pulse(self, relay: int, pulse_ms: int) -> tuple[Frame, float] | None:
        """A board-timed pulse and its real length in seconds, or None (host-timed)."""
        return None

    @abstractmethod
    def read(self, numbers: Sequence[int]) -> tuple[bytes, InputParser]:
        """One request for every input in ``numbers`` (non-empty) and its parser."""

    def setup(self, send: Send) -> list[str]:
        """Writes the board needs once after (re)connecting; a note for each change made."""
        return []

    def identify(self, send: Send) -> dict[str, Any]:
        """Read-only facts that tell this board apart (firmware version and the like)."""
        return {}


def bit_read(address: int, function: FunctionCode, base: int,
             numbers: Sequence[int]) -> tuple[bytes, InputParser]:
    """FC01/FC02 over the span of ``numbers``, input n at bit address ``base + n``."""
    first, last = min(numbers), max(numbers)
    request = read_request(address, function, base + first, last - first + 1)

    def parse(req: bytes, reply: bytes) -> dict[int, bool]:
        bits = parse_read_bits_reply(req, reply)
        return {n: bits[n - first] for n in numbers}
    return request, parse


def bitmap_read(address: int, function: FunctionCode, base: int,
                numbers: Sequence[int]) -> tuple[bytes, InputParser]:
    """FC03/FC04 of the bitmap registers: input n is bit n % 16 of register base + n // 16."""
    first, last = min(numbers) // 16, max(numbers) // 16
    request = read_request(address, function, base + first, last - first + 1)

    def parse(req: bytes, reply: bytes) -> dict[int, bool]:
        words = parse_read_registers_reply(req, reply)
        return {n: bool(words[n // 16 - first] >> (n % 16) & 1) for n in numbers}
    return request, parse


def register_read(address: int, function: FunctionCode, base: int,
                  numbers: Sequence[int]) -> tuple[bytes, InputParser]:
    """FC03/FC04, one register per input: input n is register base + n, active when != 0."""
    first, last = min(numbers), max(numbers)
    request = read_request(address, function, base + first, last - first + 1)

    def parse(req: bytes, reply: bytes) -> dict[int, bool]:
        words = parse_read_registers_reply(req, reply)
        return {n: words[n - first] != 0 for n in numbers}
    return request, parse
