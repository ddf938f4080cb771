"""Staff badges on a PC/SC contactless reader (pyscard's low-level ``smartcard.scard``).

One driver = one reader (the first whose name contains ``cfg.reader``). ``poll()`` waits in
``SCardGetStatusChange`` for at most its timeout, so the supervisor thread stays responsive;
when a card arrives it connects, sends ``FF CA 00 00 00`` and reports one ``BadgeRead`` per
presentation (card lifted and put back = a new presentation, even between two polls: pcsc-lite
counts insertions in the upper 16 bits of the event state). A card already on the reader when
the driver opens is not reported — after a pcscd restart the badge left lying on the reader
must not open the gate again; it has to be lifted and presented.

Failures: pcscd gone or restarted (``SCARD_E_NO_SERVICE``, ``SCARD_E_SERVICE_STOPPED``...), no
matching reader, or the reader unplugged raise ``DeviceUnavailable``; the supervisor marks the
device OFFLINE, closes it and reopens with backoff until pcscd and the reader are back. A card
that is mute or refuses the UID command becomes an ``UnreadableCard`` observation.

Logs carry the reader name, the badge type and a masked UID prefix only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from drivers.base import (
    BadgeRead,
    CardReader,
    DeviceUnavailable,
    Observation,
    UnreadableCard,
    load_optional,
)
from drivers.pcsc_badge.atr import (
    GET_UID_APDU,
    BadgeType,
    badge_type,
    mask_uid,
    status_word,
    uid_from_response,
)
from drivers.pcsc_badge.settings import PcscReaderConfig

log = structlog.get_logger(__name__)

#: Return codes that mean "the resource manager or the reader is gone": reopen later.
_GONE_CODES = (
    "SCARD_E_NO_SERVICE", "SCARD_E_SERVICE_STOPPED", "SCARD_E_NO_READERS_AVAILABLE",
    "SCARD_E_UNKNOWN_READER", "SCARD_E_READER_UNAVAILABLE", "SCARD_E_INVALID_HANDLE",
    "SCARD_E_COMM_DATA_LOST", "SCARD_E_NO_SMARTCARD_READER", "SCARD_F_COMM_ERROR",
    "SCARD_E_UNKNOWN_RES_MNG", "SCARD_E_SYSTEM_CANCELLED", "SCARD_E_INVALID_VALUE",
)
#: Return codes of SCardConnect/SCardTransmit that mean "this card", not "this reader".
_CARD_CODES = {
    "SCARD_W_REMOVED_CARD": "card_removed",
    "SCARD_E_NO_SMARTCARD": "card_removed",
    "SCARD_W_UNRESPONSIVE_CARD": "card_unresponsive",
    "SCARD_W_UNPOWERED_CARD": "card_unresponsive",
    "SCARD_W_UNSUPPORTED_CARD": "card_unsupported",
    "SCARD_E_PROTO_MISMATCH": "card_unsupported",
    "SCARD_W_RESET_CARD": "card_reset",
    "SCARD_E_NOT_TRANSACTED": "card_not_transacted",
    "SCARD_E_SHARING_VIOLATION": "reader_busy",
}
_U32 = 0xFFFFFFFF
#: vsmartcard's vpcd readers accept a "card" from anyone who can reach their TCP port, so the
#: empty ``reader`` (= first reader) never picks one: name it explicitly to use it (tests, demos).
VIRTUAL_READER_PREFIX = "Virtual PCD"


class PcscBadgeReader(CardReader):
    """A PC/SC contactless badge reader. Used by one thread; see ``drivers.base.Device``."""

    def __init__(self, name: str, cfg: PcscReaderConfig) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.reader_name = ""
        self._scard: Any = None
        self._ctx: int | None = None
        self._state = 0  # last dwEventState with SCARD_STATE_CHANGED cleared
        self._gone: set[int] = set()
        self._card: dict[int, str] = {}

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        scard = self._scard = load_optional("smartcard.scard", "pcsc")
        self._gone = {int(getattr(scard, n)) & _U32 for n in _GONE_CODES if hasattr(scard, n)}
        self._card = {int(getattr(scard, n)) & _U32: why for n, why in _CARD_CODES.items()
                      if hasattr(scard, n)}
        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        self._check(rc, "establish_context")
        self._ctx = ctx
        rc, names = scard.SCardListReaders(ctx, [])
        self._check(rc, "list_readers")
        matching = [n for n in names if self.cfg.reader in n
                    and (self.cfg.reader or not n.startswith(VIRTUAL_READER_PREFIX))]
        if not matching:
            raise DeviceUnavailable(
                f"{self.name}: no PC/SC reader matching {self.cfg.reader!r}",
                reason="no_reader")
        self.reader_name = matching[0]
        rc, states = scard.SCardGetStatusChange(
            ctx, 0, [(self.reader_name, scard.SCARD_STATE_UNAWARE)])
        self._check(rc, "status")
        self._state = self._reader_state(states)
        log.info("pcsc_reader_open", device=self.name, reader=self.reader_name,
                 card_present=bool(self._state & scard.SCARD_STATE_PRESENT))

    def close(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None and self._scard is not None:
            self._scard.SCardReleaseContext(ctx)  # fails harmlessly if pcscd is gone

    @property
    def card_present(self) -> bool:
        """Whether a card was on the reader at the last ``open()``/``poll()``."""
        return self._scard is not None and bool(self._state & self._scard.SCARD_STATE_PRESENT)

    # ------------------------------------------------------------------ polling
    def poll(self, timeout: float) -> Sequence[Observation]:
        scard = self._scard
        if self._ctx is None or scard is None:
            raise DeviceUnavailable(f"{self.name}: not open", reason="not_open")
        wait_ms = int(max(0.0, min(timeout, self.cfg.poll_interval_ms / 1000)) * 1000)
        rc, states = scard.SCardGetStatusChange(
            self._ctx, wait_ms, [(self.reader_name, self._state)])
        if rc & _U32 == scard.SCARD_E_TIMEOUT & _U32:
            return []
        self._check(rc, "status")
        before = self._state
        now = self._reader_state(states)
        self._state = now
        present = bool(now & scard.SCARD_STATE_PRESENT)
        was_present = bool(before & scard.SCARD_STATE_PRESENT)
        new_insertion = (now >> 16) != (before >> 16)
        if not present or (was_present and not new_insertion):
            return []
        if now & scard.SCARD_STATE_MUTE:
            log.info("badge_unreadable", device=self.name, reader=self.reader_name,
                     reason="card_mute")
            return [UnreadableCard("card_mute")]
        atr = bytes(states[0][2])
        return [self._read_card(badge_type(atr))]

    def _read_card(self, kind: BadgeType) -> Observation:
        scard = self._scard
        rc, handle, protocol = scard.SCardConnect(
            self._ctx, self.reader_name, scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if rc != scard.SCARD_S_SUCCESS:
            return self._card_failure(rc, kind)
        try:
            rc, response = scard.SCardTransmit(handle, protocol, list(GET_UID_APDU))
        finally:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        if rc != scard.SCARD_S_SUCCESS:
            return self._card_failure(rc, kind)
        uid = uid_from_response(response)
        if uid is None:
            reason = f"uid_refused_{status_word(response)}"
            log.info("badge_unreadable", device=self.name, reader=self.reader_name,
                     card_type=str(kind), reason=reason)
            return UnreadableCard(reason)
        log.info("badge_read", device=self.name, reader=self.reader_name,
                 card_type=str(kind), uid=mask_uid(uid))
        return BadgeRead(uid=uid, card_type=str(kind), reader=self.reader_name)

    # ------------------------------------------------------------------ errors
    def _card_failure(self, rc: int, kind: BadgeType) -> Observation:
        self._check_gone(rc, "card")
        reason = self._card.get(rc & _U32, f"pcsc_{rc & _U32:08X}")
        log.info("badge_unreadable", device=self.name, reader=self.reader_name,
                 card_type=str(kind), reason=reason)
        return UnreadableCard(reason)

    def _reader_state(self, states: list[tuple[str, int, list[int]]]) -> int:
        scard = self._scard
        state = int(states[0][1])
        if state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE
                    | scard.SCARD_STATE_IGNORE):
            raise DeviceUnavailable(f"{self.name}: reader {self.reader_name!r} is gone",
                                    reason="reader_removed")
        return state & ~scard.SCARD_STATE_CHANGED

    def _check_gone(self, rc: int, what: str) -> None:
        if rc & _U32 in self._gone:
            text = self._scard.SCardGetErrorMessage(rc)
            raise DeviceUnavailable(f"{self.name}: {what}: {text}",
                                    reason=f"pcsc_{rc & _U32:08X}")

    def _check(self, rc: int, what: str) -> None:
        """Any failure of a context/reader call: the link to pcscd or the reader is unusable."""
        if rc == self._scard.SCARD_S_SUCCESS:
            return
        text = self._scard.SCardGetErrorMessage(rc)
        raise DeviceUnavailable(f"{self.name}: {what}: {text}", reason=f"pcsc_{rc & _U32:08X}")
