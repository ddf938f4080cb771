"""A Modbus RTU relay board with a barrier arm wired to it, served on a pty.

The driver under test opens ``sim.port`` (the pty slave) like a real ``/dev/ttyUSB0``; the sim
reads requests from the master side, parses them with ``drivers.modbus.rtu`` and answers with
correct CRCs: the FC05 echo, FC02 input bits, exception replies for coils or inputs the board
does not have (ILLEGAL_DATA_ADDRESS), bad values (ILLEGAL_DATA_VALUE) and other functions
(ILLEGAL_FUNCTION). Frames with a bad CRC or for another address are ignored, as on a bus.

Relays follow the board's coils; a rising edge on the OPEN/CLOSE/STOP relay (numbers from
``GateCoils``) presses that button of the ``BarrierArm``. Inputs follow ``GateInputMap``:
open and closed limits from the arm, the safety beam and fire input from ``set_beam`` /
``set_fire``, the visitors' assist and escalation buttons from ``set_button`` (or ``press``).
Knobs for faults: ``jam``, ``force_open()``, ``fault`` (``BoardFault.GARBAGE`` answers noise
of the right length, ``SILENT`` answers nothing) and ``unplug()``, which closes the pty so the
driver sees the device vanish.

Runs in its own thread; every public method is safe to call from another thread. Standalone:
``python -m drivers.sim.relay_board`` prints the port and takes console commands.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections import deque

import structlog

from drivers.base import ButtonKind, ProtocolError
from drivers.modbus.rtu import (
    FLASH_BASE,
    FLASH_UNIT_MS,
    MAX_READ_BITS,
    CoilValue,
    ExceptionCode,
    FrameError,
    FunctionCode,
    ReadDiscreteInputs,
    WriteCoil,
    exception_reply,
    parse_request,
    read_discrete_inputs_reply,
    request_length,
)
from drivers.modbus_gate.settings import GateCoils, GateInputMap
from drivers.sim.barrier_arm import BarrierArm, Button
from drivers.sim.pty_sim import PtySim, run_console

log = structlog.get_logger(__name__)

LOG_LENGTH = 10_000  # bounded: `gated simulate` may run for days
SILENCE_S = 0.02  # a partial frame older than this is dropped, like an RTU inter-frame gap


class BoardFault(enum.StrEnum):
    NONE = "none"
    GARBAGE = "garbage"
    SILENT = "silent"


class RelayBoardSim(PtySim):
    name = "relay_board_sim"

    def __init__(self, *, address: int = 1, coils: GateCoils | None = None,
                 inputs: GateInputMap | None = None, travel_s: float = 2.0,
                 relay_count: int = 8, input_count: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.address = address
        self.coil_map = coils or GateCoils()
        self.input_map = inputs or GateInputMap()
        self.relay_count = relay_count
        self.input_count = input_count
        self.arm = BarrierArm(travel_s)
        self.fault = BoardFault.NONE
        self.relays = [False] * relay_count
        #: (monotonic time, relay, on) for every relay change, flashes included (recent ones)
        self.relay_log: deque[tuple[float, int, bool]] = deque(maxlen=LOG_LENGTH)
        #: (perf_counter() when its first byte was read, frame) for each request (for bench/)
        self.request_log: deque[tuple[float, bytes]] = deque(maxlen=LOG_LENGTH)
        self.requests = 0
        self.ignored_frames = 0
        self._beam = False
        self._fire = False
        self._buttons: dict[ButtonKind, bool] = {}
        self._flash_off: dict[int, float] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._buf = bytearray()  # request bytes not yet framed
        self._last_rx = self._started = 0.0

    # ------------------------------------------------------------------ knobs
    def set_beam(self, interrupted: bool) -> None:
        with self._lock:
            self._beam = interrupted

    def set_fire(self, alarm: bool) -> None:
        with self._lock:
            self._fire = alarm

    def set_button(self, button: ButtonKind, down: bool) -> None:
        with self._lock:
            self._buttons[button] = down

    def press(self, button: ButtonKind, hold_s: float = 0.3) -> None:
        """A visitor's push: down for ``hold_s`` (blocks), then up. Hold it longer than the
        driver's poll interval, as a finger does, or the poll may miss it."""
        self.set_button(button, True)
        time.sleep(hold_s)
        self.set_button(button, False)

    @property
    def jam(self) -> bool:
        return self.arm.jammed

    @jam.setter
    def jam(self, jammed: bool) -> None:
        with self._lock:
            self.arm.jammed = jammed

    def force_open(self) -> None:
        with self._lock:
            self.arm.force_open(time.monotonic())

    def position(self) -> float:
        with self._lock:
            return self.arm.position(time.monotonic())

    def presses(self, button: Button) -> int:
        with self._lock:
            return sum(1 for _, b in self.arm.presses if b == button)

    def input_bits(self) -> list[bool]:
        """The board's discrete inputs now, wiring polarity applied."""
        with self._lock:
            return self._input_bits(time.monotonic())

    # ------------------------------------------------------------------ the board
    def _input_bits(self, now: float) -> list[bool]:
        limits = self.arm.limits(now)
        bits = [False] * self.input_count
        m = self.input_map
        for number, value in ((m.open_limit, limits.open_limit),
                              (m.closed_limit, limits.closed_limit),
                              (m.safety_beam, self._beam), (m.fire_alarm, self._fire),
                              (m.assist_button, self._buttons.get(ButtonKind.ASSIST, False)),
                              (m.escalation_button,
                               self._buttons.get(ButtonKind.ESCALATION, False))):
            if number is not None and number < self.input_count:
                bits[number] = value
        return [b != m.active_low for b in bits]

    def _set_relay(self, relay: int, on: bool, now: float) -> None:
        if self.relays[relay] == on:
            return
        self.relays[relay] = on
        self.relay_log.append((now, relay, on))
        if on:
            button = {self.coil_map.open: Button.OPEN, self.coil_map.close: Button.CLOSE,
                      self.coil_map.stop: Button.STOP}.get(relay)
            if button is not None:
                self.arm.press(button, now)

    def _write_coil(self, req: WriteCoil, frame: bytes, now: float) -> bytes:
        fc = FunctionCode.WRITE_SINGLE_COIL
        if req.coil < self.relay_count:
            if req.value not in (CoilValue.ON, CoilValue.OFF):
                return exception_reply(self.address, fc, ExceptionCode.ILLEGAL_DATA_VALUE)
            self._flash_off.pop(req.coil, None)
            self._set_relay(req.coil, req.value == CoilValue.ON, now)
            return frame
        relay = req.coil - FLASH_BASE
        if 0 <= relay < self.relay_count:
            if req.value == 0:
                return exception_reply(self.address, fc, ExceptionCode.ILLEGAL_DATA_VALUE)
            self._set_relay(relay, True, now)
            self._flash_off[relay] = now + req.value * FLASH_UNIT_MS / 1000
            return frame
        return exception_reply(self.address, fc, ExceptionCode.ILLEGAL_DATA_ADDRESS)

    def _read_inputs(self, req: ReadDiscreteInputs, now: float) -> bytes:
        fc = FunctionCode.READ_DISCRETE_INPUTS
        if not 1 <= req.count <= MAX_READ_BITS:
            return exception_reply(self.address, fc, ExceptionCode.ILLEGAL_DATA_VALUE)
        if req.start + req.count > self.input_count:
            return exception_reply(self.address, fc, ExceptionCode.ILLEGAL_DATA_ADDRESS)
        bits = self._input_bits(now)
        return read_discrete_inputs_reply(self.address, bits[req.start:req.start + req.count])

    def answer(self, frame: bytes) -> bytes | None:
        """The board's reply to one whole request frame, or ``None`` for no reply."""
        now = time.monotonic()
        with self._lock:
            try:
                req = parse_request(frame)
            except ProtocolError:
                self.ignored_frames += 1
                return None
            if req.address != self.address or self.fault == BoardFault.SILENT:
                self.ignored_frames += 1
                return None
            self.requests += 1
            if isinstance(req, WriteCoil):
                reply = self._write_coil(req, frame, now)
            elif isinstance(req, ReadDiscreteInputs):
                reply = self._read_inputs(req, now)
            else:
                reply = exception_reply(self.address, req.function,
                                        ExceptionCode.ILLEGAL_FUNCTION)
            if self.fault == BoardFault.GARBAGE:
                reply = bytes(self._rng.randrange(256) for _ in reply)
            return reply

    def _expire_flashes(self) -> None:
        now = time.monotonic()
        with self._lock:
            for relay, off_at in list(self._flash_off.items()):
                if now >= off_at:
                    del self._flash_off[relay]
                    self._set_relay(relay, False, now)

    # ------------------------------------------------------------------ I/O thread
    def _on_start(self) -> None:
        self._buf.clear()

    def _poll_timeout(self) -> float | None:
        return 0.005 if self._buf or self._flash_off else None

    def _on_wake(self) -> None:
        self._expire_flashes()
        if self._buf and time.monotonic() - self._last_rx > SILENCE_S:
            self._frame_by_silence()

    def _on_data(self, data: bytes, read_at: float) -> bool:
        buf = self._buf
        if not buf:
            self._started = read_at
        self._last_rx = time.monotonic()
        buf += data
        while buf:
            try:
                length = request_length(bytes(buf[:7]))
            except FrameError:
                break  # unknown function: wait for silence to end the frame
            if length is None or len(buf) < length:
                break
            frame = bytes(buf[:length])
            del buf[:length]
            self.request_log.append((self._started, frame))
            self._started = read_at  # any rest of the buffer came with the latest read
            if not self._reply(frame):
                return False
        return True

    def _frame_by_silence(self) -> None:
        frame = bytes(self._buf)
        self._buf.clear()
        self.request_log.append((self._started, frame))
        if len(frame) >= 4:
            self._reply(frame)
        else:
            self.ignored_frames += 1

    def _reply(self, frame: bytes) -> bool:
        reply = self.answer(frame)
        return reply is None or self._write(reply)


def main() -> None:
    """Run the board on a pty for manual tests; type ``help`` for the console commands."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--address", type=int, default=1)
    parser.add_argument("--travel", type=float, default=2.0, help="arm travel time, seconds")
    args = parser.parse_args()
    with RelayBoardSim(address=args.address, travel_s=args.travel) as sim:
        print(f"relay board on {sim.port} (address {args.address}); type help", flush=True)
        _console(sim)


def _console(sim: RelayBoardSim) -> None:
    actions = {
        "beam on": lambda: sim.set_beam(True), "beam off": lambda: sim.set_beam(False),
        "fire on": lambda: sim.set_fire(True), "fire off": lambda: sim.set_fire(False),
        "jam on": lambda: setattr(sim, "jam", True), "jam off": lambda: setattr(sim, "jam", False),
        "force": sim.force_open,
        "assist": lambda: sim.press(ButtonKind.ASSIST),
        "escalate": lambda: sim.press(ButtonKind.ESCALATION),
        "garbage": lambda: setattr(sim, "fault", BoardFault.GARBAGE),
        "silent": lambda: setattr(sim, "fault", BoardFault.SILENT),
        "ok": lambda: setattr(sim, "fault", BoardFault.NONE),
    }
    run_console(actions, lambda: f"arm {sim.position():.2f} relays {sim.relays} "
                f"inputs {sim.input_bits()} fault {sim.fault}")


if __name__ == "__main__":
    main()
