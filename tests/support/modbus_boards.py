"""Relay boards served by pymodbus, a Modbus stack that is not ours, on a null-modem pty.

pymodbus frames, checks CRCs, decodes function codes and answers exception replies for
addresses a board does not have; the board families' own behaviour (what a coil write or a
register command does to a relay, their timers, the inputs) is modelled here in the
datastore's ``action`` hook, with the register or coil map of each family
(docs/PROTOCOLS-hardware.md):

- ``coil``: coils 0..7 (FC05), discrete inputs 0..7 (FC02), nothing else.
- ``waveshare_v2``: the same plus the flash command (FC05 on 0x0200 + n, value = 100 ms
  units; pymodbus's FC05 decoder keeps only on/off, so a vendor PDU class replaces it, as
  pymodbus's ``custom_pdu`` is meant for), control modes in holding registers 0x1000 + n
  (1 = linkage: input n drives relay n; boards ship like that) and the firmware version in
  0x8000.
- ``r4d3b16``: relay channel c in holding register c (FC06 command high byte, FC03 reads
  0/1), no FC05 / FC02; the delayed-off command times the relay on the board. With it an
  N4D3E16 input board at another address: inputs as the bits of holding register 0x00C0.
- ``generic``: relays as holding registers 100 + n (FC06, 1 / 0), inputs as input
  registers 200 + n (FC04): plain pymodbus, for the generic profile's configured map.

The gate's mechanics are the simulator's ``BarrierArm`` (a rising edge on the OPEN / CLOSE /
STOP relay presses that button), and ``pass_pulse`` stands for a person walking through a
swing gate. Every relay change is logged with its time; ``energised()`` is what a test
asserts after the daemon is killed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import WriteSingleCoilRequest
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.sim.barrier_arm import BarrierArm, Button
from tests.support.nullmodem import NullModem

FLASH_BASE, FLASH_OFF_BASE, MODES, VERSION = 0x0200, 0x0400, 0x1000, 0x8000
N4D3E16_BITMAP = 0x00C0
GENERIC_RELAYS, GENERIC_INPUTS = 100, 200
FAMILIES = ("coil", "waveshare_v2", "r4d3b16", "generic")


class BoardModel:
    """Relays, their timers and the inputs of one board family, shared by the server's
    thread and the test's (every method takes the lock)."""

    def __init__(self, family: str, *, relays: int = 8, coils: dict[str, int] | None = None,
                 inputs: dict[str, int] | None = None, travel_s: float = 0.1,
                 linkage: bool = False) -> None:
        self.family = family
        self.relays = [False] * relays
        self.log: list[tuple[float, int, bool]] = []
        #: (device id, function, address, value written or None) of every request served
        self.requests: list[tuple[int, int, int, int | None]] = []
        self.coil_map = coils or {"open": 0, "close": 1, "stop": 2}
        self.input_map = inputs or {"open_limit": 0, "closed_limit": 1, "safety_beam": 2,
                                    "fire_alarm": 3}
        self.arm = BarrierArm(travel_s)
        self.modes = [1 if linkage else 0] * relays
        self.flags: dict[str, bool] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ test side
    def set(self, name: str, value: bool) -> None:
        with self._lock:
            self.flags[name] = value

    def pass_pulse(self, name: str = "pass_a", hold_s: float = 0.15) -> None:
        """A person through a swing gate: its PASS output active for ``hold_s``."""
        self.set(name, True)
        time.sleep(hold_s)
        self.set(name, False)

    def energised(self) -> list[int]:
        with self._lock:
            return [i for i, on in enumerate(self.relays) if on]

    def pulses(self, relay: int) -> list[tuple[float, float]]:
        """(on, off) times of every completed pulse of ``relay``."""
        with self._lock:
            out, start = [], None
            for t, r, on in self.log:
                if r != relay:
                    continue
                if on and start is None:
                    start = t
                elif not on and start is not None:
                    out.append((start, t))
                    start = None
            return out

    def writes(self, function: int, address: int) -> list[int | None]:
        """The values written with ``function`` to ``address``, in order."""
        with self._lock:
            return [v for _, fc, a, v in self.requests
                    if fc == function and a == address and v is not None]

    def ons(self, relay: int) -> int:
        with self._lock:
            return sum(1 for _, r, on in self.log if r == relay and on)

    # ------------------------------------------------------------------ board side
    def input_bits(self, count: int = 16) -> list[bool]:
        with self._lock:
            return self._input_bits(count)

    def _input_bits(self, count: int) -> list[bool]:
        limits = self.arm.limits(time.monotonic())
        values = {"open_limit": limits.open_limit, "closed_limit": limits.closed_limit,
                  **self.flags}
        bits = [False] * count
        for name, number in self.input_map.items():
            if number is not None and number < count:
                bits[number] = bool(values.get(name, False))
        return bits

    def _set_relay(self, relay: int, on: bool) -> None:
        if not 0 <= relay < len(self.relays) or self.relays[relay] == on:
            return
        self.relays[relay] = on
        now = time.monotonic()
        self.log.append((now, relay, on))
        if on:
            button = {v: Button(k) for k, v in self.coil_map.items()
                      if k in ("open", "close", "stop")}.get(relay)
            if button is not None:
                self.arm.press(button, now)

    def switch(self, relay: int, on: bool) -> None:
        with self._lock:
            self._cancel(relay)
            self._set_relay(relay, on)

    def timed(self, relay: int, seconds: float) -> None:
        """On now, off after ``seconds``, timed here (the board's own timer)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._cancel(relay)
            self._set_relay(relay, True)
            self._timers[relay] = loop.call_later(seconds, self.switch, relay, False)

    def _cancel(self, relay: int) -> None:
        timer = self._timers.pop(relay, None)
        if timer is not None:
            timer.cancel()

    def apply_linkage(self) -> None:
        """Input-to-relay linkage of a Waveshare (D) board in mode 1: input n drives relay n."""
        with self._lock:
            bits = self._input_bits(len(self.relays))
            for n, mode in enumerate(self.modes):
                if mode == 1:
                    self._set_relay(n, bits[n])


# --------------------------------------------------------------------------- datastores


def _fill_bits(registers: list[int], bits: list[bool]) -> None:
    for i in range(len(registers)):
        registers[i] = sum(1 << b for b in range(16) if 16 * i + b < len(bits) and bits[16 * i + b])


def _device(model: BoardModel, device_id: int) -> SimDevice:
    family = model.family
    relays = len(model.relays)

    async def action(fc: int, start: int, address: int, count: int, registers: list[int],
                     values: list[int] | list[bool] | None) -> ExcCodes | None:
        written = None if values is None else int(values[0])
        with model._lock:
            model.requests.append((device_id, fc, address, written))
        if family == "waveshare_v2":
            model.apply_linkage()
        if family in ("coil", "waveshare_v2"):
            if fc == 5 and values is not None:
                model.switch(address, bool(values[0]))
            elif fc == 2:
                _fill_bits(registers, model.input_bits(16 * len(registers)))
            elif fc == 6 and values is not None and family == "waveshare_v2":
                if address - MODES not in range(relays) or int(values[0]) > 2:
                    return ExcCodes.ILLEGAL_VALUE
                model.modes[address - MODES] = int(values[0])
            elif fc == 3 and family == "waveshare_v2":
                for i in range(len(registers)):
                    if 0 <= start + i - MODES < relays:
                        registers[i] = model.modes[start + i - MODES]
            return None
        if family == "r4d3b16":
            return await _register_family(model, fc, start, address, registers, values)
        if fc == 6 and values is not None:  # generic: relays are registers 100 + n
            model.switch(address - GENERIC_RELAYS, int(values[0]) != 0)
        elif fc == 4:
            bits = model.input_bits(16)
            for i in range(len(registers)):
                n = start + i - GENERIC_INPUTS
                registers[i] = int(bits[n]) if 0 <= n < 16 else 0
        return None

    if family in ("coil", "waveshare_v2"):
        holding = ([SimData(MODES, count=relays, values=0, datatype=DataType.REGISTERS),
                    SimData(VERSION, values=200, datatype=DataType.REGISTERS)]
                   if family == "waveshare_v2" else
                   [SimData(0xFFF0, values=0, datatype=DataType.INVALID)])
        simdata: Any = ([SimData(0, count=relays, values=False, datatype=DataType.BITS)],
                        [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                        holding, [SimData(0xFFF0, values=0, datatype=DataType.INVALID)])
        return SimDevice(device_id, simdata=simdata, action=action)
    if family == "r4d3b16":
        return SimDevice(device_id, action=action, simdata=[
            SimData(1, count=relays, values=0, datatype=DataType.REGISTERS)])
    return SimDevice(device_id, action=action, simdata=[
        SimData(GENERIC_RELAYS, count=relays, values=0, datatype=DataType.REGISTERS),
        SimData(GENERIC_INPUTS, count=16, values=0, datatype=DataType.REGISTERS)])


async def _register_family(model: BoardModel, fc: int, start: int, address: int,
                           registers: list[int],
                           values: list[int] | list[bool] | None) -> ExcCodes | None:
    """R4D3B16 / R4D8B08: FC06 commands on channel registers, FC03 reads 0/1."""
    if fc not in (3, 6):
        return ExcCodes.ILLEGAL_FUNCTION  # no coils, no discrete inputs
    relays = len(model.relays)
    if fc == 6 and values is not None:
        command, argument = int(values[0]) >> 8, int(values[0]) & 0xFF
        relay = address - 1
        if command == 0x01:
            model.switch(relay, True)
        elif command == 0x02:
            model.switch(relay, False)
        elif command == 0x05:
            model.timed(relay, 1.0)
        elif command == 0x06:
            model.timed(relay, float(argument))
        else:
            return ExcCodes.ILLEGAL_VALUE
        return None  # pymodbus stores the command and echoes it, as the board does
    if fc == 3:  # (not the read-back pymodbus makes for the echo of a write)
        with model._lock:
            for i in range(len(registers)):
                if 0 <= start + i - 1 < relays:
                    registers[i] = int(model.relays[start + i - 1])
    return None


def _input_board(model: BoardModel, device_id: int) -> SimDevice:
    """N4D3E16: 16 inputs, per input at 0x0081 + n and as the bitmap register 0x00C0."""
    async def action(fc: int, start: int, address: int, count: int, registers: list[int],
                     values: list[int] | list[bool] | None) -> ExcCodes | None:
        with model._lock:
            model.requests.append((device_id, fc, address, None))
        if fc != 3:
            return ExcCodes.ILLEGAL_FUNCTION
        bits = model.input_bits(16)
        for i in range(len(registers)):
            reg = start + i
            if reg == N4D3E16_BITMAP:
                registers[i] = sum(1 << n for n in range(16) if bits[n])
            elif 0x81 <= reg <= 0x90:
                registers[i] = int(bits[reg - 0x81])
        return None
    return SimDevice(device_id, action=action, simdata=[
        SimData(0x81, count=16, values=0, datatype=DataType.REGISTERS),
        SimData(N4D3E16_BITMAP, values=0, datatype=DataType.REGISTERS)])


def _flash_pdu(model: BoardModel) -> type[ModbusPDU]:
    """Waveshare's FC05 with vendor values: on/off on coils, flash on 0x0200 + n."""
    class WaveshareWriteCoil(WriteSingleCoilRequest):
        raw = 0

        def decode(self, data: bytes) -> None:
            self.address = int.from_bytes(data[0:2], "big")
            self.raw = int.from_bytes(data[2:4], "big")
            self.bits = [self.raw == 0xFF00]

        def encode(self) -> bytes:
            return self.address.to_bytes(2, "big") + self.raw.to_bytes(2, "big")

        async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
            if FLASH_BASE <= self.address < FLASH_OFF_BASE + len(model.relays):
                with model._lock:  # (plain coil writes are logged by the datastore's action)
                    model.requests.append((device_id, 5, self.address, self.raw))
            if FLASH_BASE <= self.address < FLASH_BASE + len(model.relays):
                if self.raw == 0:
                    return _exception(self, ExcCodes.ILLEGAL_VALUE)
                model.timed(self.address - FLASH_BASE, self.raw / 10)
                return self._echo()
            if FLASH_OFF_BASE <= self.address < FLASH_OFF_BASE + len(model.relays):
                return _exception(self, ExcCodes.ILLEGAL_ADDRESS)  # not used by gated
            if self.raw not in (0x0000, 0xFF00):
                return _exception(self, ExcCodes.ILLEGAL_VALUE)
            reply = await super().datastore_update(context, device_id)
            return reply if reply.function_code & 0x80 else self._echo()

        def _echo(self) -> ModbusPDU:
            echo = WaveshareWriteCoil(address=self.address, bits=self.bits,
                                      dev_id=self.dev_id, transaction_id=self.transaction_id)
            echo.raw = self.raw
            return echo
    return WaveshareWriteCoil


def _exception(pdu: ModbusPDU, code: ExcCodes) -> ModbusPDU:
    from pymodbus.pdu import ExceptionResponse
    return ExceptionResponse(pdu.function_code, code)


class _KnownIds:
    """pymodbus 3.16's SimCore answers a request for an id it does not serve with a
    KeyError (an exception reply 04 goes out); a real bus stays silent. This raises the
    NoSuchIdException its request handler expects, so ``ignore_missing_devices`` works."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def device_ids(self) -> list[int]:
        ids: list[int] = self._core.device_ids()
        return ids

    def _check(self, device_id: int) -> None:
        from pymodbus.exceptions import NoSuchIdException
        if device_id not in self._core.device_ids():
            raise NoSuchIdException(f"no device {device_id}")

    async def async_getValues(self, device_id: int, *args: Any) -> Any:
        self._check(device_id)
        return await self._core.async_getValues(device_id, *args)

    async def async_setValues(self, device_id: int, *args: Any) -> Any:
        self._check(device_id)
        return await self._core.async_setValues(device_id, *args)


class PymodbusBoard:
    """A pymodbus RTU server on one end of a null modem; a driver opens ``port``."""

    def __init__(self, family: str, *, address: int = 1, input_address: int = 2,
                 baudrate: int = 9600, **model: Any) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown board family {family!r}")
        self.family = family
        self.model = BoardModel(family, **model)
        self.address, self.input_address, self.baudrate = address, input_address, baudrate
        self._modem = NullModem()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusSerialServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._ticker: Callable[[], None] | None = None

    @property
    def port(self) -> str:
        return self._modem.b

    def start(self) -> PymodbusBoard:
        self._modem.start()
        self._thread = threading.Thread(target=self._run, name=f"pymodbus-{self.family}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("pymodbus server did not start")
        return self

    def _run(self) -> None:
        logging.getLogger("pymodbus").setLevel(logging.ERROR)  # its frame dumps are DEBUG
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        devices = [_device(self.model, self.address)]
        if self.family == "r4d3b16":
            devices.append(_input_board(self.model, self.input_address))
        custom = [_flash_pdu(self.model)] if self.family == "waveshare_v2" else None

        async def serve() -> None:
            self._server = ModbusSerialServer(devices, framer=FramerType.RTU,
                                              port=self._modem.a, baudrate=self.baudrate,
                                              custom_pdu=custom, ignore_missing_devices=True)
            self._server.context = _KnownIds(self._server.context)
            await self._server.serve_forever(background=True)
            self._ready.set()
            while self._server is not None:
                if self.family == "waveshare_v2":
                    self.model.apply_linkage()
                await asyncio.sleep(0.01)
        try:
            loop.run_until_complete(serve())
        finally:
            loop.close()

    def stop(self) -> None:
        server, loop = self._server, self._loop
        if server is not None and loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(5)
        self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._modem.stop()

    def __enter__(self) -> PymodbusBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
