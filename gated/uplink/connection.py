"""The MQTT connection: one network thread, a fresh paho client per attempt, clear refusals.

The network thread runs the socket itself (``netloop.NetLoop``, paho's external-loop API) and,
between socket events, the ``worker`` (the outbox drain): there is no paho thread.

Why a fresh client per attempt: paho keeps its unacknowledged messages in memory and resends
all of them at once after a reconnect. The outbox is the store, not paho; starting each
connection with an empty client means the drain alone decides what is resent, in seq order,
within its window. The session is still persistent (MQTT 5 ``clean_start=False`` with a session
expiry, 3.1.1 ``clean_session=False``) so the broker keeps our subscriptions and queues
commands sent while we were away.

Callbacks run on the network thread and only hand over to ``Hooks`` (which enqueue); nothing
here blocks on the state thread or waits for SQLite.
"""

from __future__ import annotations

import contextlib
import enum
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from drivers.threads import named_thread
from gated.config import GatedConfig
from gated.uplink.netloop import NetLoop, Worker, misc_interval

log = structlog.get_logger(__name__)

TOPIC_ROOT = "gated/v1"
SITE_WIDE = "_site"  # not a valid booth slug, so it can never collide with a booth id
DISCONNECT_WAIT_S = 2.0


class RefusalKind(enum.StrEnum):
    """Why the broker (or TLS) refused us; these need a person, so they raise an event."""

    BAD_CREDENTIALS = "bad_credentials"
    NOT_AUTHORISED = "not_authorised"
    CLIENT_ID_REJECTED = "client_id_rejected"
    TLS_FAILURE = "tls_failure"
    CLOSED_BEFORE_CONNACK = "closed_before_connack"
    REFUSED = "refused"
    CREDENTIAL_FILES = "credential_files"


@dataclass(frozen=True)
class Topics:
    """Every topic of one booth (the contract, with every payload: gated/wire/asyncapi.yaml)."""

    site: str
    booth: str

    @property
    def root(self) -> str:
        return f"{TOPIC_ROOT}/{self.site}/{self.booth}"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    def event(self, type_: str) -> str:
        return f"{self.root}/events/{type_}"

    @property
    def commands(self) -> str:
        return f"{self.root}/cmd/+"

    def reply(self, name: str) -> str:
        return f"{self.root}/reply/{name}"

    @property
    def sync(self) -> list[str]:
        return [f"{self.root}/sync/+", f"{TOPIC_ROOT}/{self.site}/{SITE_WIDE}/sync/+"]

    def sync_ack(self, kind: str) -> str:
        return f"{self.root}/sync_ack/{kind}"

    def sync_request(self, kind: str) -> str:
        return f"{self.root}/sync_request/{kind}"


@dataclass(frozen=True)
class Connected:
    client: mqtt.Client
    generation: int
    session_present: bool
    receive_maximum: int | None
    maximum_packet_size: int | None


@dataclass
class Hooks:
    """What the network thread hands over; each must return at once (enqueue only)."""

    connected: Callable[[Connected], None]
    disconnected: Callable[[int, str], None]
    puback: Callable[[int, int, int], None]  # generation, mid, reason code value
    message: Callable[[mqtt.Client, mqtt.MQTTMessage], None]
    refused: Callable[[RefusalKind, str, int], None]  # kind, detail, attempt


def classify_connack(rc: ReasonCode) -> RefusalKind | None:
    """A refused CONNACK (3.1.1 codes arrive mapped to MQTT 5 reason codes by paho)."""
    if not rc.is_failure:
        return None
    value = int(rc.value)
    if value == 0x86:
        return RefusalKind.BAD_CREDENTIALS
    if value in (0x87, 0x8A):
        return RefusalKind.NOT_AUTHORISED  # mosquitto answers a bad password with 0x87 too
    if value == 0x85:
        return RefusalKind.CLIENT_ID_REJECTED
    if value in (0x88, 0x89, 0x97):
        return None  # server unavailable or busy: transient, retried quietly
    return RefusalKind.REFUSED


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Capped exponential backoff with jitter: thousands of booths must not retry in step."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return rng.uniform(ceiling / 2, ceiling)


def read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    return path.read_text(encoding="utf-8").strip()


class Connection:
    """Connects, keeps connected, and tells ``hooks`` everything; see the module docstring."""

    def __init__(self, cfg: GatedConfig, hooks: Hooks,
                 will: Callable[[int], bytes]) -> None:
        """``will(connection)`` builds the last will of connection attempt ``connection`` (the
        broker keeps it from CONNECT on, so it is made anew for every attempt)."""
        self.cfg = cfg
        self.hooks = hooks
        self.will = will
        self._net = NetLoop()
        self.topics = Topics(cfg.site.id, cfg.booth.id)
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._ended = threading.Event()  # this attempt's connection is over
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._generation = 0
        self._rng = random.Random()
        self.connected = False
        self.got_connack = False
        self.last_error: str | None = None
        self.refused: str | None = None
        self.attempts = 0
        self.connects = 0
        self._reported = False

    # ------------------------------------------------------------------ lifecycle
    def start(self, worker: Worker) -> None:
        """Run the network thread; ``worker`` (the drain) runs on it: ``open()`` when it
        starts, ``close()`` when it ends, ``step()`` between socket events while connected."""
        self._stop.clear()
        self._net.open()
        self._thread = named_thread(self._run, "gated-mqtt-net", args=(worker,))
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly (DISCONNECT sent, so no will), close the worker, end the thread."""
        self._stop.set()
        self._kick.set()
        self._ended.set()
        self._net.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._net.close()
            self._thread = None

    def wake(self) -> None:
        """From any thread: the worker has news (new rows, a state-thread result)."""
        self._net.wake()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> mqtt.MQTTMessageInfo | None:
        """Publish on the current connection; None when there is none (the caller decides)."""
        client = self._client
        if client is None or not self.connected:
            return None
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        except (ValueError, OSError) as e:
            log.warning("mqtt_publish_failed", topic=topic, error=str(e))
            return None
        self._net.wake()  # queued only: the network thread writes it
        return info

    @property
    def generation(self) -> int:
        """The number of the current (or last) connection attempt in this session: with
        ``session`` it orders a booth's status messages and wills (a will of an earlier
        connection that arrives late is older than the status of this one)."""
        return self._generation

    @property
    def is_v5(self) -> bool:
        return self.cfg.mqtt.protocol == "5"

    # ------------------------------------------------------------------ network thread
    def _run(self, worker: Worker) -> None:
        worker.open()
        try:
            self._attempts(worker)
        finally:
            worker.close()

    def _attempts(self, worker: Worker) -> None:
        m = self.cfg.mqtt
        while not self._stop.is_set():
            try:
                self._attempt(worker)
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("mqtt_attempt_failed", host=m.host, port=m.port, error=str(e))
            if self._stop.is_set():
                break
            delay = backoff_delay(self.attempts, m.reconnect_min_s, m.reconnect_max_s, self._rng)
            self.attempts += 1
            log.info("mqtt_reconnect_wait", delay_s=round(delay, 2), attempt=self.attempts,
                     last_error=self.last_error)
            self._kick.wait(delay)
            self._kick.clear()

    def _attempt(self, worker: Worker) -> None:
        self._generation += 1
        gen = self._generation
        self.got_connack = False
        self._reported = False
        self._ended.clear()
        try:
            client = self._build(gen)
        except (OSError, ValueError, ssl.SSLError) as e:
            self._refused(RefusalKind.CREDENTIAL_FILES, str(e))
            return
        m = self.cfg.mqtt
        try:
            if self.is_v5:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = m.session_expiry_s
                client.connect(m.host, m.port, m.keepalive_s, clean_start=False,
                               properties=props)
            else:
                client.connect(m.host, m.port, m.keepalive_s)
        except ssl.SSLError as e:
            self._refused(RefusalKind.TLS_FAILURE, f"{type(e).__name__}: {e}")
            return
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
            if m.tls is None:
                self.last_error = f"connect: {e}"
                log.warning("mqtt_connect_failed", host=m.host, port=m.port, error=str(e))
            else:  # the peer hung up during the handshake: not a TLS listener, or it refused us
                self._refused(RefusalKind.TLS_FAILURE, f"handshake: {e}")
            return
        except OSError as e:  # broker down or unreachable: transient, retried quietly
            self.last_error = f"connect: {e}"
            log.warning("mqtt_connect_failed", host=m.host, port=m.port, error=str(e))
            return
        self._client = client
        try:
            # until on_disconnect, a refused CONNACK or stop() sets _ended
            self._net.serve(client, self._ended, worker, misc_interval(m.keepalive_s))
        finally:
            was_connected = self.connected
            self.connected = False
            self._client = None
            with contextlib.suppress(OSError, ValueError):
                client.disconnect()
            if was_connected:
                # a socket closed without DISCONNECT makes the broker publish our will
                # ("lost") over the retained "stopped" status of a clean stop
                self._net.flush(client, DISCONNECT_WAIT_S)
            if not self.got_connack and not self._stop.is_set() and not self._reported:
                kind = (RefusalKind.TLS_FAILURE if m.tls is not None
                        else RefusalKind.CLOSED_BEFORE_CONNACK)
                self._refused(kind, "connection closed before CONNACK")
            if was_connected:
                self.hooks.disconnected(gen, self.last_error or "closed")
                worker.step()  # the worker hears of it now: acks still to delete go

    def _build(self, gen: int) -> mqtt.Client:
        m = self.cfg.mqtt
        proto = mqtt.MQTTv5 if self.is_v5 else mqtt.MQTTv311
        kwargs: dict[str, Any] = {} if self.is_v5 else {"clean_session": False}
        client = mqtt.Client(CallbackAPIVersion.VERSION2, self.cfg.client_id, protocol=proto,
                             **kwargs)
        client.max_inflight_messages_set(0)  # the drain bounds what is in flight
        client.max_queued_messages_set(0)
        # never reconnect on its own: a fresh client per attempt (see the module docstring)
        client.reconnect_delay_set(min_delay=86400, max_delay=86400)
        user = read_secret(m.username_file)
        if user:
            client.username_pw_set(user, read_secret(m.password_file))
        if m.tls is not None:
            client.tls_set(ca_certs=str(m.tls.ca_file),
                           certfile=str(m.tls.cert_file) if m.tls.cert_file else None,
                           keyfile=str(m.tls.key_file) if m.tls.key_file else None)
        client.will_set(self.topics.status, self.will(gen), qos=1, retain=True)
        client.on_connect = lambda c, u, flags, rc, props: self._on_connect(c, gen, flags, rc,
                                                                            props)
        client.on_disconnect = lambda c, u, flags, rc, props: self._on_disconnect(gen, rc)
        client.on_publish = lambda c, u, mid, rc, props: self.hooks.puback(gen, mid,
                                                                           int(rc.value))
        client.on_message = lambda c, u, msg: self.hooks.message(c, msg)
        return client

    def _on_connect(self, client: mqtt.Client, gen: int, flags: Any, rc: ReasonCode,
                    props: Properties | None) -> None:
        self.got_connack = True
        kind = classify_connack(rc)
        if rc.is_failure:
            self._ended.set()
            if kind is None:
                self.last_error = f"connack: {rc}"
                log.warning("mqtt_server_unavailable", reason=str(rc))
            else:
                self._refused(kind, str(rc))
            return
        self.connected = True
        self.refused = None
        self.last_error = None
        self.attempts = 0
        self.connects += 1
        m = self.cfg.mqtt
        subs = [(self.topics.commands, 1)] + [(t, 1) for t in self.topics.sync]
        client.subscribe(subs)
        recv_max = getattr(props, "ReceiveMaximum", None) if props is not None else None
        max_pkt = getattr(props, "MaximumPacketSize", None) if props is not None else None
        log.info("mqtt_connected", host=m.host, port=m.port, protocol=m.protocol,
                 session_present=bool(flags.session_present), receive_maximum=recv_max)
        self.hooks.connected(Connected(client, gen, bool(flags.session_present), recv_max,
                                       max_pkt))

    def _on_disconnect(self, gen: int, rc: ReasonCode) -> None:
        self._ended.set()
        if self.connected and not self._stop.is_set():
            self.last_error = f"disconnected: {rc}"
            log.warning("mqtt_disconnected", reason=str(rc))
        self.connected = False

    def _refused(self, kind: RefusalKind, detail: str) -> None:
        """A refusal a person must fix: say so loudly, keep retrying at the capped backoff."""
        self.refused = str(kind)
        self._reported = True
        self.last_error = f"{kind}: {detail}"
        self.attempts = max(self.attempts, 30)  # no point hammering: straight to the cap
        log.error("mqtt_refused", reason=str(kind), detail=detail, host=self.cfg.mqtt.host,
                  port=self.cfg.mqtt.port)
        self.hooks.refused(kind, detail, self.attempts)
