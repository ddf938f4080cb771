"""A virtual contactless badge for vsmartcard's vpcd reader driver, speaking its TCP protocol.

vpcd (a pcsc-lite reader driver loaded by pcscd) listens on a TCP port per reader slot. A card
is a client of that port: connecting puts the card on the reader, closing the socket takes it
off. Every message both ways is a 2-byte big-endian length + payload. One-byte messages from
vpcd are control codes (00 power off, 01 power on, 02 reset: no answer; 04: answer the ATR);
longer ones are command APDUs, answered with a response APDU. vpcd asks for the ATR on every
presence check (several times a second), so the card answers from its own thread.

The ATRs are built here, independently of ``drivers.pcsc_badge.atr``, so the driver's classifier is
tested against bytes it did not produce.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Self


def with_tck(body: bytes) -> bytes:
    """Append TCK (XOR of T0..last historical byte) to ``3B ...``."""
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes([tck])


def storage_atr(card_name: int, standard: int = 0x03) -> bytes:
    """PC/SC Part 3 ATR of an ISO 14443-3 storage card (card_name 0001 = Mifare Classic 1K)."""
    hist = bytes([0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, standard]) \
        + card_name.to_bytes(2, "big") + bytes(4)
    return with_tck(bytes([0x3B, 0x80 | len(hist), 0x80, 0x01]) + hist)


def iso14443_4_atr(historical: bytes) -> bytes:
    return with_tck(bytes([0x3B, 0x80 | len(historical), 0x80, 0x01]) + historical)


ATR_CLASSIC_1K = storage_atr(0x0001)
ATR_CLASSIC_4K = storage_atr(0x0002)
ATR_ULTRALIGHT = storage_atr(0x0003)
ATR_DESFIRE = iso14443_4_atr(b"\x80")  # 3B 81 80 01 80 80
ATR_ISO14443_4 = iso14443_4_atr(b"\x00\x31\xC1\x73\xC8\x40\x00\x00\x90\x00")
ATR_UNKNOWN = bytes.fromhex("3B0212345678")  # a contact card ATR, not from a PC/SC CL reader

CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET, CTRL_GET_ATR = 0x00, 0x01, 0x02, 0x04


@dataclass
class CardLog:
    """What the reader did to the card, for tests to assert on."""

    controls: list[int] = field(default_factory=list)
    apdus: list[bytes] = field(default_factory=list)


class VirtualCard:
    """One badge. ``insert()`` connects to vpcd, ``remove()`` closes; repeatable."""

    def __init__(self, port: int, *, atr: bytes = ATR_CLASSIC_1K,
                 uid: bytes = bytes.fromhex("04A1B2C3D4E5F6"), refuse_uid: bool = False,
                 host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.atr = atr
        self.uid = uid
        self.refuse_uid = refuse_uid
        self.log = CardLog()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ card behaviour
    def respond(self, apdu: bytes) -> bytes:
        """Response APDU for one command APDU (what a PC/SC CL reader answers for the card)."""
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1 = apdu[0], apdu[1], apdu[2]
        if cla == 0xFF and ins == 0xCA:
            if self.refuse_uid:
                return b"\x6A\x81"
            if p1 == 0x00:
                return self.uid + b"\x90\x00"
            if p1 == 0x01:
                n = self.atr[1] & 0x0F
                return self.atr[4:4 + n] + b"\x90\x00"
            return b"\x6A\x81"
        return b"\x6D\x00"

    # ------------------------------------------------------------------ presence
    @property
    def inserted(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def insert(self, timeout: float = 5.0) -> None:
        """Put the card on the reader: connect to vpcd, retrying until it listens."""
        if self.inserted:
            raise RuntimeError("card already inserted")
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,),
                                        name=f"vpcd-card-{self.port}", daemon=True)
        self._thread.start()

    def remove(self) -> None:
        """Take the card off the reader: close the socket and join the thread."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # vpcd already closed it (pcscd stopped)
            sock.close()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    close = remove

    def __enter__(self) -> Self:
        self.insert()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.remove()

    # ------------------------------------------------------------------ the thread
    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                head = self._recv_exact(sock, 2)
                if head is None:
                    return
                (length,) = struct.unpack(">H", head)
                msg = self._recv_exact(sock, length)
                if msg is None:
                    return
                if len(msg) == 1:
                    self.log.controls.append(msg[0])
                    if msg[0] == CTRL_GET_ATR:
                        sock.sendall(struct.pack(">H", len(self.atr)) + self.atr)
                    continue
                self.log.apdus.append(msg)
                reply = self.respond(msg)
                sock.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            return  # removed (our shutdown) or vpcd went away with pcscd
