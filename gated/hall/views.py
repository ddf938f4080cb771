"""What each page is sent: built from the daemon's status and the hall's config, and nothing
else. The display's view holds numbers, services and counters only; the guard's holds case ids,
numbers, zones and devices, never a pseudonym (``feed.ALERT_FIELDS``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gated.config import WEEKDAYS, HallView, RatingLevel
from gated.hall.feed import Feed


class Views:
    def __init__(self, view: HallView) -> None:
        self.cfg = view
        self.tz = ZoneInfo(view.site.timezone)

    def service_name(self, service: str | None) -> str:
        svc = self.cfg.services.get(service or "")
        return svc.name if svc else (service or "")

    def counter_name(self, counter: str | None) -> str:
        return self.cfg.hall.counter_name(str(counter)) if counter else ""

    def _today(self) -> str:
        return WEEKDAYS[datetime.now(self.tz).weekday()]

    def call(self, data: dict[str, Any], event_id: str, ts: str) -> dict[str, Any]:
        """A call as the display shows it (numbers, service and counter names only)."""
        return {"id": event_id, "number": data.get("number"), "counter": data.get("counter"),
                "counter_name": self.counter_name(data.get("counter")),
                "service_name": self.service_name(data.get("service")),
                "recall": data.get("action") == "recall", "at": ts}

    def hall_info(self) -> dict[str, Any]:
        h, t = self.cfg.hall, self.cfg.ticket
        day = self._today()
        return {"title": self.cfg.title, "hotline": f"{t.hotline_label} {t.hotline_number}",
                "desk": h.desk_label or t.first_responder, "duty": h.duty.get(day, ""),
                "reception": h.reception.get(day, ""), "blink_s": h.blink_s}

    def services(self, status: dict[str, Any]) -> list[dict[str, Any]]:
        stats = (status.get("queue") or {}).get("services") or {}
        return [{"id": sid, "name": svc.name, "waiting": int(stats.get(sid, {}).get("waiting", 0)),
                 "wait_min": int(stats.get(sid, {}).get("wait_min", 0))}
                for sid, svc in self.cfg.services.items()]

    def display(self, feed: Feed) -> dict[str, Any]:
        queue = feed.status.get("queue") or {}
        calls = [{"id": c.get("ticket_id"), "number": c.get("number"),
                  "counter_name": self.counter_name(c.get("counter")),
                  "service_name": self.service_name(c.get("service")), "at": c.get("called_at")}
                 for c in (queue.get("calls") or [])[:self.cfg.hall.recent_calls + 1]]
        return {"daemon_ok": feed.daemon_ok, "hall": self.hall_info(), "calls": calls,
                "services": self.services(feed.status),
                "notice": (queue.get("notice") or {}).get("text", "")}

    def counters(self, feed: Feed) -> dict[str, Any]:
        queue = feed.status.get("queue") or {}
        known = queue.get("counters") or {}
        out = {}
        for c in self.cfg.counters() + [c for c in known if c not in self.cfg.counters()]:
            k = known.get(c) or {}
            services = k.get("services") or self.cfg.queue.counters.get(c) or \
                list(self.cfg.services)
            cur = k.get("current")
            out[c] = {"name": self.counter_name(c), "services": services,
                      "paused": bool(k.get("paused")),
                      "current": None if not cur else {
                          "number": cur.get("number"), "service": cur.get("service"),
                          "service_name": self.service_name(cur.get("service")),
                          "issued_at": cur.get("issued_at"), "called_at": cur.get("called_at"),
                          "recalls": cur.get("recalls", 0)}}
        return out

    def counter(self, feed: Feed) -> dict[str, Any]:
        return {"daemon_ok": feed.daemon_ok, "services": self.services(feed.status),
                "counters": self.counters(feed)}

    def pad(self, feed: Feed) -> dict[str, Any]:
        return {"daemon_ok": feed.daemon_ok, "title": self.cfg.title,
                "levels": [{"id": str(v), "label": v.label, "bad": v.bad} for v in RatingLevel],
                "reasons": self.cfg.rating.reasons, "timeout_s": self.cfg.rating.pad_timeout_s}

    def guard(self, feed: Feed) -> dict[str, Any]:
        st = feed.status
        queue = st.get("queue") or {}

        def cases(key: str) -> list[dict[str, Any]]:
            return [{k: c.get(k) for k in ("case_id", "kind", "state", "zone", "number",
                                           "opened_at", "raises")} for c in queue.get(key) or []]
        devices = {n: {"state": d.get("state"), "reason": d.get("reason", "")}
                   for n, d in (st.get("devices") or {}).items()}
        uplink = st.get("uplink") or {}
        return {
            "daemon_ok": feed.daemon_ok, "alerts": list(feed.alerts),
            "assists": cases("open_assists"), "escalations": cases("open_escalations"),
            "callbacks": cases("open_callbacks"),
            "reprints": [{"number": r.get("number"), "ticket_id": r.get("ticket_id")}
                         for r in queue.get("reprints") or []],
            "zones": {z: v.get("mode") for z, v in (queue.get("zones") or {}).items()},
            "zone_names": {z: v.get("name") for z, v in (queue.get("zones") or {}).items()},
            "armed": queue.get("armed") or {},
            "notice": (queue.get("notice") or {}).get("text", ""),
            "devices": devices, "storage_ok": st.get("storage_ok"),
            "uplink": {"enabled": bool(uplink), "connected": bool(uplink.get("connected")),
                       "last_error": uplink.get("last_error"),
                       "backlog": (st.get("outbox") or {}).get("depth")},
            "services": self.services(st), "ratings_today": queue.get("ratings_today") or {},
        }
