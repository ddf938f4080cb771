"""One I/O thread per device: open with capped exponential backoff, poll, execute, report.

The thread is the only user of its driver. It turns every ``DeviceError`` into device state
(``err.state``), closes the driver and reopens it after a backoff that doubles up to the cap,
forever: a reader unplugged for a week comes back by itself when it is plugged in again.
Observations and state changes go to the state thread through the callbacks given at
construction; commands come in through ``send`` and run between polls, in order.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from drivers.base import (
    CommandDone,
    DependencyMissing,
    Device,
    DeviceCommand,
    DeviceError,
    DeviceState,
    DeviceTimeout,
    Observation,
)
from drivers.threads import named_thread

log = structlog.get_logger(__name__)

AFTER_WAIT_S = 0.05  # how long a command waits for the commands it must follow
ObservationSink = Callable[[str, Observation], None]
StateSink = Callable[[str, DeviceState, DeviceState, str], None]


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, failures: int) -> float:
        base = min(self.max_s, self.initial_s * (2 ** max(0, failures - 1)))
        return base * random.uniform(0.8, 1.0)


class DeviceRunner:
    """Supervises one driver. ``factory`` builds a fresh driver for every (re)open."""

    #: The longest one ``poll()`` waits. Commands and ``stop()`` wake the driver's ``idle()``,
    #: so this is not a latency: it only bounds how late a driver that cannot be woken notices
    #: a stop. A short one costs CPU all night (each return runs this loop, and a driver whose
    #: own next read falls just after the return wakes twice instead of once). A driver's
    #: health is reported after every poll and every command, so this does not delay it.
    POLL_S = 5.0
    #: A command that waited longer (device offline) is refused, not replayed: a gate must
    #: not swing open minutes after the visitor gave up. Tickets go to the reprint list.
    COMMAND_TTL_S = 10.0
    MAX_PROTOCOL_ERRORS = 3  # consecutive garbled replies before the link is reopened
    #: Polls in a row without an answer before the device counts as OFFLINE: real modules
    #: stall now and then (a SAM module once took 116 ms for a find it answers in 20), and
    #: one late reply must not take a reader offline and raise an alarm.
    MAX_TIMEOUTS = 3

    def __init__(self, name: str, factory: Callable[[], Device], *,
                 on_observation: ObservationSink, on_state: StateSink,
                 backoff: Backoff = Backoff()) -> None:
        self.name = name
        self._factory = factory
        self._on_obs = on_observation
        self._on_state = on_state
        self._backoff = backoff
        self._commands: queue.SimpleQueue[tuple[float, DeviceCommand]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = DeviceState.CONNECTING
        self.reason = "starting"
        self.failures = 0
        self._device: Device | None = None  # the open driver, for wake() on send()
        self._log = log.bind(device=name)

    # ------------------------------------------------------------------ API
    def send(self, command: DeviceCommand) -> None:
        """Queue a write; never blocks. Commands wait while the device is offline."""
        self._commands.put((time.monotonic(), command))
        device = self._device
        if device is not None:
            device.wake()

    def start(self) -> None:
        self._thread = named_thread(self._run, f"dev-{self.name}")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        device = self._device
        if device is not None:
            device.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # ------------------------------------------------------------------ the thread
    def _set_state(self, state: DeviceState, reason: str) -> None:
        if state == self.state and reason == self.reason:
            return
        old, self.state, self.reason = self.state, state, reason
        self._log.info("device_state", old=str(old), new=str(state), reason=reason)
        self._on_state(self.name, old, state, reason)

    def _emit(self, observations: Sequence[Observation]) -> None:
        for obs in observations:
            self._on_obs(self.name, obs)

    def _run(self) -> None:
        while not self._stop.is_set():
            device: Device | None = None
            try:
                device = self._factory()
                device.open()
                self.failures = 0
                self._device = device
                self._serve(device)
            except DependencyMissing as e:
                self._set_state(DeviceState.DISABLED, f"{e.reason}: {e}")
                self._fail_pending(str(e))
                return
            except DeviceError as e:
                self.failures += 1
                self._set_state(DeviceState.OFFLINE if e.state == DeviceState.DEGRADED
                                else e.state, f"{e.reason}: {e}")
            except Exception as e:  # noqa: BLE001 - a driver bug must not kill supervision
                self.failures += 1
                self._log.exception("driver_crashed", error=str(e))
                self._set_state(DeviceState.OFFLINE, f"driver_error: {e}")
            finally:
                self._device = None
                if device is not None:
                    self._close(device)
            if not self._stop.is_set():
                self._stop.wait(self._backoff.delay(self.failures))

    def _serve(self, device: Device) -> None:
        protocol_errors = timeouts = 0
        self._report_health(device)
        while not self._stop.is_set():
            try:
                while True:
                    try:
                        queued_at, cmd = self._commands.get_nowait()
                    except queue.Empty:
                        break
                    if time.monotonic() - queued_at > self.COMMAND_TTL_S:
                        self._on_obs(self.name, CommandDone(
                            cmd.command_id, False, "expired: device was not ready in time"))
                        _done(cmd)
                        continue
                    _wait_after(cmd, queued_at)
                    try:
                        self._execute(device, cmd)
                    finally:
                        _done(cmd)
                    self._report_health(device)
                self._emit(device.poll(self.POLL_S))
                protocol_errors = timeouts = 0
                self._report_health(device)
            except DeviceTimeout as e:
                timeouts += 1
                if timeouts >= self.MAX_TIMEOUTS:
                    raise
                self._log.warning("device_timeout_tolerated", misses=timeouts,
                                  of=self.MAX_TIMEOUTS, error=str(e))
            except DeviceError as e:
                if e.state != DeviceState.DEGRADED:
                    raise
                protocol_errors += 1
                self._set_state(DeviceState.DEGRADED, f"{e.reason}: {e}")
                if protocol_errors >= self.MAX_PROTOCOL_ERRORS:
                    raise

    def _execute(self, device: Device, cmd: DeviceCommand) -> None:
        try:
            out = list(device.execute(cmd))
        except DeviceError as e:
            self._on_obs(self.name, CommandDone(cmd.command_id, False, f"{e.reason}: {e}"))
            if e.state != DeviceState.DEGRADED:
                raise
            self._set_state(DeviceState.DEGRADED, f"{e.reason}: {e}")
            return
        except Exception as e:
            # A driver bug: the command is answered (a ticket goes to the reprint list), then
            # the driver is reopened like any crash.
            self._on_obs(self.name, CommandDone(cmd.command_id, False, f"driver_error: {e}"))
            raise
        if not any(isinstance(o, CommandDone) for o in out):
            out.append(CommandDone(cmd.command_id, True))
        self._emit(out)

    def _report_health(self, device: Device) -> None:
        if device.fault:
            self._set_state(DeviceState.DEGRADED, device.fault)
        elif device.blind:
            self._set_state(DeviceState.UNKNOWN, "no_status: the device does not report it")
        else:
            self._set_state(DeviceState.READY, "ok")

    def _fail_pending(self, why: str) -> None:
        while True:
            try:
                _, cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            self._on_obs(self.name, CommandDone(cmd.command_id, False, why))
            _done(cmd)

    def _close(self, device: Device) -> None:
        try:
            device.close()
        except DeviceError as e:
            self._log.warning("device_close_failed", error=str(e))
        except OSError as e:
            self._log.warning("device_close_failed", error=str(e))


def _wait_after(cmd: DeviceCommand, queued_at: float) -> None:
    """What ``cmd`` must follow on other devices, waited for ``AFTER_WAIT_S`` at most from
    when it was queued: a device that is slow or offline delays it that much, no more."""
    for event in cmd.after:
        left = queued_at + AFTER_WAIT_S - time.monotonic()
        if left <= 0 or not event.wait(left):
            return


def _done(cmd: DeviceCommand) -> None:
    if cmd.done is not None:
        cmd.done.set()


def wait_for_state(runner: DeviceRunner, state: DeviceState, timeout: float) -> bool:
    """Test and CLI helper: poll ``runner.state`` until it equals ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner.state == state:
            return True
        time.sleep(0.01)
    return runner.state == state
