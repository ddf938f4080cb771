"""Driver fixtures: build drivers with per-test config overrides, close every one at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from drivers.base import Device
from drivers.modbus_gate.settings import ModbusGateConfig
from drivers.registry import model_for

D = TypeVar("D", bound=Device)


@contextmanager
def device_factory(build: Callable[..., D], *, open_it: bool = True
                   ) -> Iterator[Callable[..., D]]:
    """Yield ``make(**overrides)``: ``build(**overrides)``, opened unless ``open_it=False``.

    A driver is registered before it is opened, so one whose ``open()`` failed half-way is
    closed too (drivers must accept that, as the supervisor does it as well).
    """
    made: list[D] = []

    def make(*args: object, open_it: bool = open_it, **overrides: object) -> D:
        dev = build(*args, **overrides)
        made.append(dev)
        if open_it:
            dev.open()
        return dev

    try:
        yield make
    finally:
        for dev in made:
            dev.close()


def gate_config(port: str, **overrides: object) -> Any:
    """A relay-board gate at ``port`` with times scaled down for tests (travel 0.1 s in the
    simulator, polls every 20 ms, idle, open or not); ``overrides`` are config keys, ``profile``
    and ``gate`` included (the model is the one the config would pick for that table)."""
    values: dict[str, object] = dict(
        type="modbus_gate", port=port, zone="public", pulse_ms=50, response_timeout_ms=40,
        poll_interval_ms=20, idle_poll_interval_ms=20, open_poll_interval_ms=20, auto_close_s=0.4,
        travel_timeout_s=0.4, held_open_alarm_s=0.8)
    values.update(overrides)
    model = model_for(values) or ModbusGateConfig
    return model.model_validate(values)
