"""What every gate kind behind a relay board shares: one board on one RTU link, its polling
loop, and the retry policy of its transactions.

A subclass (``ModbusGate`` for barriers and contacts, ``SwingGate`` for swing lanes) is the
gate's model: it says what a read of the inputs means (``_service``), how a lost link is
described (``_lost``), and when the next read is due (``_next_read_at``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from drivers.base import (
    DeviceError,
    DeviceTimeout,
    DeviceUnavailable,
    Gate,
    Observation,
    ProtocolError,
)
from drivers.modbus.link import RtuLink
from drivers.modbus_gate.board import INPUTS, GateBoard
from drivers.modbus_gate.settings import GateSettings

T = TypeVar("T")

ATTEMPTS = 2  # one retry for a lost or garbled frame, which RS-485 noise makes routine


class BoardGate(Gate):
    def __init__(self, name: str, config: GateSettings, *, fail_open: bool,
                 log: Any, inputs: Sequence[str] = INPUTS) -> None:
        super().__init__(name)
        self.config = config
        self.fail_open = fail_open
        self._log = log
        self._link = RtuLink(config.port, baudrate=config.baudrate,
                             timeout_s=config.response_timeout_ms / 1000)
        self._board = GateBoard(config, self._send, inputs)
        self._poll_s = config.poll_interval_ms / 1000
        self._next_read_at = 0.0
        self.pending: list[Observation] = []

    # ------------------------------------------------------------------ the gate's model
    def _service(self, now: float) -> list[Observation]:
        """Read what is due (inputs, pulse ends, timers) and say what changed."""
        raise NotImplementedError

    def _lost(self, e: DeviceTimeout | DeviceUnavailable) -> DeviceError:
        """The error a lost link becomes, saying what the gate was last seen doing."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Device
    def close(self) -> None:
        if self._link.is_open:
            for relay, e in self._board.end_pulses():
                self._log.warning("gate_pulse_end_failed", relay=str(relay), error=str(e))
        self._board.forget()
        self._link.close()

    def poll(self, timeout: float) -> Sequence[Observation]:
        deadline = time.monotonic() + max(0.0, timeout)
        out, self.pending = self.pending, []
        while not out:
            now = time.monotonic()
            pulse_end = self._board.next_pulse_end
            wake = min(self._next_read_at, deadline,
                       deadline if pulse_end is None else pulse_end)
            if wake > now and self.idle(wake - now):
                break  # a command is waiting: let the supervisor execute it now
            out += self._service(time.monotonic())
            if time.monotonic() >= deadline:
                break
        # Spend idle time here, not in the next execute(): keeps commands' first byte prompt.
        settle = min(self._link.quiet_at, deadline) - time.monotonic()
        if settle > 0:
            time.sleep(settle)
        return out

    def _send(self, request: bytes, parse: Callable[[bytes, bytes], T]) -> T:
        """One transaction, tried again once after a garbled frame or a timeout."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._link.transact(request, parse)
            except ProtocolError as e:
                if attempt == ATTEMPTS:
                    raise
                self._log.warning("modbus_retry", reason=e.reason, error=str(e))
            except DeviceTimeout as e:
                if attempt == ATTEMPTS:
                    raise self._lost(e) from e
                self._log.warning("modbus_retry", reason=e.reason, error=str(e))
            except DeviceUnavailable as e:
                raise self._lost(e) from e
        raise AssertionError("unreachable")


__all__ = ["ATTEMPTS", "BoardGate"]
