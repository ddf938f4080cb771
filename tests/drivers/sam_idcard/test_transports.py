"""SAM transports: a desktop reader on USB through pyusb (with a backend that speaks the real
SAM bytes: this machine has no USB reader), baud rate auto-detection on a serial line, and
the optional init commands."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from drivers.base import (
    DependencyMissing,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    IdCardRead,
    ProtocolError,
)
from drivers.registry import model_for
from drivers.sam_idcard.codec import Status
from drivers.sam_idcard.driver import SamCardReader
from drivers.sim.sam_reader import SamFault, SamReaderSim
from drivers.sim.sam_usb import SamUsbBackend
from drivers.supervisor import Backoff, DeviceRunner, wait_for_state
from tests.support import polling
from tests.support.cards import ADULT, HMT

pytestmark = pytest.mark.timeout(30)
pump_until = partial(polling.pump_until, limit=5.0)


def reader(backend: Any = None, **over: Any) -> SamCardReader:
    values: dict[str, Any] = dict(type="sam_idcard", poll_interval_ms=20, find_timeout_ms=50,
                                  read_timeout_ms=500)
    values.update(over)
    model = model_for(values)
    assert model is not None
    return SamCardReader("id_reader", model.model_validate(values), usb_backend=backend)


def read_one(r: SamCardReader) -> IdCardRead:
    out = pump_until(r, lambda o: isinstance(o, IdCardRead))
    found = [o for o in out if isinstance(o, IdCardRead)]
    return found[0]


def test_usb_reader_reads_cards_through_pyusb() -> None:
    backend = SamUsbBackend()
    r = reader(backend, profile="usb")
    r.open()
    try:
        backend.module.present(ADULT)
        assert read_one(r).id_number == ADULT.id_number
        backend.module.remove()
        polling.pump(r, 0.2)  # the reader sees the card go
        backend.module.split = True  # replies in random chunks, over several packets
        backend.module.present(HMT)
        assert read_one(r).card_type == "hmt_permit"
    finally:
        r.close()
    assert not backend.claimed  # close() gave the interface back


def test_usb_reader_unplugged_goes_offline_and_comes_back() -> None:
    backend = SamUsbBackend()
    states: list[DeviceState] = []
    runner = DeviceRunner("id_reader", lambda: reader(backend, profile="usb"),
                          on_observation=lambda *_: None,
                          on_state=lambda _n, _o, new, _r: states.append(new),
                          backoff=Backoff(0.05, 0.1))
    runner.start()
    try:
        assert wait_for_state(runner, DeviceState.READY, 5)
        backend.module.plugged = False
        assert wait_for_state(runner, DeviceState.OFFLINE, 5)
        backend.module.plugged = True
        assert wait_for_state(runner, DeviceState.READY, 5)
    finally:
        runner.stop()


def test_usb_reader_with_another_id_is_not_found() -> None:
    r = reader(SamUsbBackend(), profile="usb", usb_id="0316:5020")
    with pytest.raises(DeviceUnavailable, match="no USB device 0316:5020"):
        r.open()
    r.close()


def test_usb_serial_number_picks_the_reader() -> None:
    backend = SamUsbBackend(serial="A12")
    with pytest.raises(DeviceUnavailable):
        reader(backend, profile="usb", usb_serial="B34").open()
    r = reader(backend, profile="usb", usb_serial="A12")
    r.open()
    r.close()


def test_a_usb_reader_without_pyusb_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    monkeypatch.setitem(sys.modules, "usb.core", None)  # as if pyusb were not installed
    with pytest.raises(DependencyMissing, match="gated\\[usb\\]"):
        reader(None, profile="usb").open()


@pytest.mark.parametrize("speed", [115200, 38400, 9600])
def test_baud_rate_auto_detect(speed: int) -> None:
    with SamReaderSim() as sim:
        sim.baudrate = speed
        r = reader(port=sim.port, baudrate="auto")
        r.open()
        try:
            assert r._bauds[0] == speed  # found, and tried first on the next reopen
            sim.present(ADULT)
            assert read_one(r).id_number == ADULT.id_number
        finally:
            r.close()


def test_a_fixed_wrong_baud_rate_is_not_a_reader() -> None:
    with SamReaderSim() as sim:
        sim.baudrate = 9600
        r = reader(port=sim.port, baudrate=115200)
        with pytest.raises((DeviceTimeout, ProtocolError)):
            r.open()
        r.close()


def test_auto_detect_finds_nothing_when_silent() -> None:
    with SamReaderSim() as sim:
        sim.fault = SamFault.SILENT
        r = reader(port=sim.port, baudrate="auto", find_timeout_ms=20)
        with pytest.raises(DeviceTimeout, match="115200, 57600, 38400, 19200, 9600"):
            r.open()
        r.close()


def test_init_commands_are_sent_after_the_status() -> None:
    with SamReaderSim() as sim:
        sim.extra_commands = {(0x61, 0xFF): Status.OK}
        r = reader(port=sim.port, init=["61 FF 50"])
        r.open()
        r.close()
        assert sim.received[:2] == [(0x11, 0xFF, b""), (0x61, 0xFF, b"\x50")]


def test_an_init_command_the_module_refuses() -> None:
    with SamReaderSim() as sim:
        r = reader(port=sim.port, init=["61FF50"])
        with pytest.raises(ProtocolError) as info:
            r.open()
        assert info.value.reason == "init_refused"
        r.close()


def test_usb_reader_gets_init_commands_too() -> None:
    backend = SamUsbBackend()
    backend.module.extra_commands = {(0x61, 0xFF): Status.OK}
    r = reader(backend, profile="usb", init=["61FF50"])
    r.open()
    r.close()
    assert (0x61, 0xFF, b"\x50") in backend.module.received
