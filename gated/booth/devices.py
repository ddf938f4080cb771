"""The booth's devices as the core sees them: names, kinds, states and command queues."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from drivers.base import Device, DeviceCommand, DeviceKind, DeviceState, Observation
from drivers.registry import build_driver, driver_class
from drivers.settings import DeviceSettings, ZonedSettings
from drivers.supervisor import Backoff, DeviceRunner, ObservationSink, StateSink
from gated.config import GatedConfig

log = structlog.get_logger(__name__)


class DeviceDirectory:
    """Builds one supervised runner per enabled device; what ``BoothLogic`` talks to."""

    def __init__(self, cfg: GatedConfig, *, on_observation: ObservationSink,
                 on_state: StateSink) -> None:
        self._cfg = cfg
        self.runners: dict[str, DeviceRunner] = {}
        self.kinds: dict[str, DeviceKind] = {}
        self._zones: dict[str, str] = {}
        backoff = Backoff(cfg.supervision.backoff_initial_s, cfg.supervision.backoff_max_s)
        for name, dev_cfg in cfg.devices.items():
            if not dev_cfg.enabled:
                continue
            kwargs: dict[str, object] = {}
            if isinstance(dev_cfg, ZonedSettings):  # a gate: opens on fire if its zone fails open
                kwargs["fail_open"] = cfg.zones[dev_cfg.zone].fail_open
                self._zones[name] = dev_cfg.zone
            self.runners[name] = DeviceRunner(
                name, _factory(name, dev_cfg, kwargs), on_observation=on_observation,
                on_state=on_state, backoff=backoff)
            self.kinds[name] = driver_class(dev_cfg.type_name()).kind

    def start(self) -> None:
        for runner in self.runners.values():
            runner.start()

    def stop(self) -> None:
        for runner in self.runners.values():
            runner.stop()

    # ------------------------------------------------------------------ the Protocol
    def send(self, device_name: str, cmd: DeviceCommand) -> None:
        runner = self.runners.get(device_name)
        if runner is None:
            raise KeyError(f"no device named {device_name!r}")
        runner.send(cmd)

    def gates_for_zone(self, zone: str) -> list[str]:
        return [n for n, z in self._zones.items() if z == zone]

    def printers(self) -> list[str]:
        return [n for n, k in self.kinds.items() if k == DeviceKind.PRINTER]

    def state(self, device_name: str) -> DeviceState:
        runner = self.runners.get(device_name)
        return runner.state if runner else DeviceState.DISABLED

    def snapshot(self) -> dict[str, dict[str, str]]:
        return {n: {"kind": str(self.kinds[n]), "state": str(r.state), "reason": r.reason}
                for n, r in self.runners.items()}


def _factory(name: str, dev_cfg: DeviceSettings, kwargs: dict[str, object]) -> Callable[[], Device]:
    def make() -> Device:
        return build_driver(name, dev_cfg, **kwargs)
    return make


__all__ = ["DeviceDirectory", "Observation", "driver_class"]
