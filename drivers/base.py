"""Device contracts shared by every driver and by the daemon core.

A driver is a blocking object used by exactly one I/O thread (see ``drivers.supervisor``):
the thread calls ``open()``, then ``poll()`` in a loop and ``execute()`` for each command taken
from the device's own command queue, and ``close()`` when the device fails or the daemon stops.
A driver never touches daemon state: it returns *observations* (frozen dataclasses below) that
the supervisor hands to the state thread through a queue.

Failures are raised as ``DeviceError`` subclasses. Their ``state`` says what health the device
has after the failure, so the supervisor can turn any error into device state without guessing:
``DeviceUnavailable`` (port missing, unplugged) means OFFLINE and a reopen with backoff;
``DeviceFault`` (paper out, cover open, jammed arm) means DEGRADED while the link still works.
"""

from __future__ import annotations

import enum
import importlib
import threading
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import Any, ClassVar, Self

import structlog

log = structlog.get_logger(__name__)


class DeviceKind(enum.StrEnum):
    CARD_READER = "card_reader"
    GATE = "gate"
    PRINTER = "printer"
    QR_SCANNER = "qr_scanner"


class DeviceState(enum.StrEnum):
    """Published health of a device; every change becomes a ``device.state`` event."""

    CONNECTING = "connecting"
    READY = "ready"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    DISABLED = "disabled"
    #: the link is up but the device cannot tell its health (a one-way printer that never
    #: answers a status request): it is used as a ready one, and the guard sees it is blind
    UNKNOWN = "unknown"


class DeviceError(Exception):
    """Base of every device failure. ``reason`` is a short machine-readable slug."""

    state: ClassVar[DeviceState] = DeviceState.OFFLINE
    reason: str = "device_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class DeviceUnavailable(DeviceError):
    """The device cannot be reached: missing node, unplugged cable, closed port."""

    reason = "unavailable"


class DeviceTimeout(DeviceError):
    """The device did not answer in time (silence, wrong baud rate, powered off)."""

    reason = "timeout"


class ProtocolError(DeviceError):
    """The device answered with bytes that do not form a valid reply (bad CRC, garbage)."""

    state = DeviceState.DEGRADED
    reason = "protocol_error"


class DeviceFault(DeviceError):
    """The link works but the device reports a fault (paper out, jam, cover open)."""

    state = DeviceState.DEGRADED
    reason = "fault"


class DependencyMissing(DeviceError):
    """An optional library (pyscard, OpenCV) is not installed; the device stays disabled."""

    state = DeviceState.DISABLED
    reason = "dependency_missing"


def load_optional(module: str, extra: str) -> ModuleType:
    """Import an optional library when a device opens, not at import time.

    A missing one raises ``DependencyMissing`` naming the extra to install: the supervisor
    then keeps that one device DISABLED and the rest of the daemon runs.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DependencyMissing(
            f"{module} is not installed ({e}); pip install 'gated[{extra}]'") from e


# --------------------------------------------------------------------------- observations


@dataclass(frozen=True)
class Observation:
    """Something a device saw. Subclasses are the only things that cross into the core."""


@dataclass(frozen=True)
class IdCardRead(Observation):
    """Fields of one resident/permit card presentation, photo already dropped by the driver.

    Holds personal data for the few microseconds until ``gated.policy.identity`` turns it into a
    credential: ``repr`` masks every personal field so an accidental log line cannot leak it.
    """

    card_type: str  # "resident", "hmt_permit", "foreigner_2017", "foreigner_2023"
    id_number: str = field(repr=False)
    name: str = field(repr=False)
    gender_code: str = field(repr=False)
    birth: date | None = field(repr=False)
    valid_from: date | None = field(repr=False)
    valid_to: date | None = field(repr=False)  # None = long-term (长期)
    nation_code: str = field(default="", repr=False)


@dataclass(frozen=True)
class UnreadableCard(Observation):
    """A card was presented but could not be read; the visitor is sent to the guard."""

    reason: str


@dataclass(frozen=True)
class BadgeRead(Observation):
    """A contactless badge UID (hex, upper case) and the card type derived from the ATR."""

    uid: str
    card_type: str
    reader: str = ""


@dataclass(frozen=True)
class QrRead(Observation):
    """Raw payload of an appointment QR code seen by the camera."""

    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class GateInputs(Observation):
    """Snapshot of a gate controller's inputs, sent on every change."""

    open_limit: bool
    closed_limit: bool
    safety_beam: bool
    fire_alarm: bool


class ButtonKind(enum.StrEnum):
    """The booth's visitor push-buttons (wired to a relay board's inputs)."""

    ASSIST = "assist"  # priority help: disability, pregnancy, ... (the reason is never asked)
    ESCALATION = "escalation"  # "办不成事找局长"


@dataclass(frozen=True)
class ButtonPressed(Observation):
    """One press of a visitor push-button: sent once per press, never for a held button."""

    button: ButtonKind


class GateAlarmKind(enum.StrEnum):
    JAM = "jam"
    FORCED = "forced"
    HELD_OPEN = "held_open"
    FIRE = "fire"  # fire alarm: the gate is opened and held (zone fails open)
    FIRE_REPORTED = "fire_reported"  # fire alarm in a zone that does not fail open: left as is
    FIRE_CLEARED = "fire_cleared"
    CLOSE_REFUSED_SAFETY = "close_refused_safety"
    CLOSE_REFUSED_FIRE = "close_refused_fire"


@dataclass(frozen=True)
class GateAlarm(Observation):
    """Jam, forced opening, held open too long: raised by the gate driver's own model."""

    kind: GateAlarmKind
    detail: str = ""


@dataclass(frozen=True)
class PrinterStatus(Observation):
    """Printer status after decoding DLE EOT or automatic status back."""

    online: bool
    cover_open: bool = False
    paper_near_end: bool = False
    paper_out: bool = False
    cutter_error: bool = False

    @property
    def fault(self) -> str | None:
        """Why the printer cannot print now (the most actionable reason first), or None."""
        if self.paper_out:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.cutter_error:
            return "cutter_error"
        if not self.online:
            return "offline"
        return None


@dataclass(frozen=True)
class CommandDone(Observation):
    """Result of one ``execute()`` call, echoed back so the core can close the loop."""

    command_id: str
    ok: bool
    detail: str = ""


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class DeviceCommand:
    """A write to a device. ``command_id`` ties the ``CommandDone`` back to its origin.

    Commands to different devices run on different threads, so their order on the wire is
    whichever thread runs first. ``after`` orders them: the runner waits (``AFTER_WAIT_S`` at
    most) until each of those events is set before executing this command; ``done`` is set by
    the runner once this command has been executed or given up. A visitor's gate opening goes
    out before their ticket that way (the printer waits for the gate, never the reverse).
    """

    command_id: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    done: threading.Event | None = field(default=None, compare=False, repr=False)
    after: tuple[threading.Event, ...] = field(default=(), compare=False, repr=False)


# --------------------------------------------------------------------------- the driver ABC


class Device(ABC):
    """One physical device. Not thread-safe: exactly one I/O thread drives it."""

    kind: ClassVar[DeviceKind]

    def __init__(self, name: str) -> None:
        self.name = name
        #: A lasting condition the link itself does not show (paper out, jammed arm). The
        #: supervisor publishes DEGRADED with this reason while it is set and READY once a
        #: driver clears it; drivers set and clear it from what poll() sees.
        self.fault: str | None = None
        #: The device cannot report its own health (a one-way printer): while the link works
        #: and no fault is set the supervisor publishes UNKNOWN, not READY.
        self.blind = False
        #: ``action`` -> handler of each command this driver executes (``execute`` looks it
        #: up); empty for a read-only device, which answers every command as unsupported.
        self.handlers: dict[str, Callable[[DeviceCommand], list[Observation]]] = {}
        #: Observations made outside ``poll`` (in ``open``, say): handed over ahead of the next
        #: command's or poll's own.
        self.pending: list[Observation] = []
        self._wake = threading.Event()

    def wake(self) -> None:
        """Called from another thread when a command is queued: cut the current idle() short."""
        self._wake.set()

    def idle(self, seconds: float) -> bool:
        """Sleep inside ``poll()`` that a queued command interrupts; True when woken.

        Drivers wait here instead of ``time.sleep`` so a command's first byte goes out at once
        instead of after the rest of the poll interval.
        """
        # Cleared only when it woke us: a wake() landing between a timed-out wait and a clear
        # would otherwise be lost, and its command would wait a whole poll interval.
        if self._wake.wait(max(0.0, seconds)):
            self._wake.clear()
            return True
        return False

    @abstractmethod
    def open(self) -> None:
        """Open the transport and check the device answers; raise ``DeviceError`` if not."""

    @abstractmethod
    def close(self) -> None:
        """Release the transport. Must be safe to call twice and after a failed ``open()``."""

    @abstractmethod
    def poll(self, timeout: float) -> Sequence[Observation]:
        """Wait at most ``timeout`` seconds for something to happen and return what happened.

        Called in a loop; must return promptly (the same thread also executes commands).
        """

    def execute(self, command: DeviceCommand) -> Sequence[Observation]:
        """Carry out one write command with its handler from ``handlers``; an action with no
        handler is answered as unsupported. What is ``pending`` goes out first."""
        handler = self.handlers.get(command.action)
        if handler is None:
            return self.unsupported(command)
        out, self.pending = self.pending, []
        return out + handler(command)

    def unsupported(self, command: DeviceCommand) -> list[Observation]:
        """The answer to an action this driver does not know: a failed ``CommandDone``, not a
        ``DeviceError`` (a bad command says nothing about the device, which stays up)."""
        log.warning("device_unsupported_command", device=self.name, action=command.action[:64])
        return [CommandDone(command.command_id, False,
                            f"unsupported command {command.action[:64]!r}")]

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


class CardReader(Device):
    kind = DeviceKind.CARD_READER


class Gate(Device):
    """Commands: ``open``, ``close``, ``stop``, ``lamp`` (args: on: bool), ``hold_open``."""

    kind = DeviceKind.GATE


class TicketPrinter(Device):
    """Commands: ``print`` (args: ticket: dict as built by ``gated.booth.ticket``), ``status``."""

    kind = DeviceKind.PRINTER


class QrScanner(Device):
    kind = DeviceKind.QR_SCANNER


@dataclass(frozen=True)
class GatePassage(Observation):
    """The safety beam was interrupted, then cleared, while the arm was not closed.

    ``count`` numbers the passages since the arm was last down and ``admitted`` the openings
    commanded in that time (each admitted visitor's tap is one), so the core flags tailgating
    (more passages than admissions) without its own tally.
    """

    count: int = 1
    admitted: int = 1
