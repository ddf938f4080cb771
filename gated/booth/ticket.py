"""What a queue ticket says, independent of how a printer is driven.

``ticket_document`` turns a ``TicketInfo`` and the config into a JSON-safe dict: it is what the
core stores in the reprint list (``gated.booth.printing``) and what a printer driver lays out
(``drivers.escpos_printer.layout``). Everything printed is in it, so a reprint months later
prints the same ticket, and a test can check the content without decoding bytes.

Privacy: the only personal item is the masked name, and only when ``ticket.print_masked_name``
is set. A name that is not masked (no ``*``) is dropped rather than printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import structlog

from gated.config import GatedConfig

log = structlog.get_logger(__name__)

DOC_SCHEMA = 1
MASK = "*"


@dataclass(frozen=True)
class TicketInfo:
    ticket_id: str
    number: str  # "A007"
    service_name: str
    issued_at: datetime  # aware
    ahead: int
    wait_min: int
    priority: bool = False
    priority_label: str = ""  # e.g. "优先" / "预约"
    masked_name: str = ""
    reprint: bool = False
    reminder: bool = False  # a slip for a number the visitor already holds


def rating_url(template: str, *, ticket_id: str, site: str, booth: str) -> str:
    """Fill ``{ticket_id}``, ``{site}`` and ``{booth}``; other braces are left alone."""
    out = template
    for key, value in (("ticket_id", ticket_id), ("site", site), ("booth", booth)):
        out = out.replace("{" + key + "}", quote(value, safe=""))
    return out


def _masked(name: str) -> str:
    if name and MASK not in name:
        log.warning("ticket_name_not_masked_dropped", length=len(name))
        return ""
    return name


def ticket_document(cfg: GatedConfig, info: TicketInfo) -> dict[str, Any]:
    """Everything the printed ticket shows, as plain JSON types (see the module docstring)."""
    if info.issued_at.tzinfo is None:
        raise ValueError("TicketInfo.issued_at must be timezone-aware")
    local = info.issued_at.astimezone(ZoneInfo(cfg.site.timezone))
    t = cfg.ticket
    mark = (info.priority_label or t.priority_mark) if info.priority else ""
    return {
        "schema": DOC_SCHEMA,
        "ticket_id": info.ticket_id,
        "hall_name": cfg.site.hall_name,
        "booth_name": cfg.booth.name or cfg.booth.id,
        "number": info.number,
        "service": info.service_name,
        "issued_at": local.isoformat(timespec="seconds"),
        "time": local.strftime("%Y-%m-%d %H:%M"),
        "ahead": int(info.ahead),
        "wait_min": int(info.wait_min),
        "priority": bool(info.priority),
        "priority_mark": mark,
        "masked_name": _masked(info.masked_name) if t.print_masked_name else "",
        "rating_url": rating_url(t.rating_url, ticket_id=info.ticket_id, site=cfg.site.id,
                                 booth=cfg.booth.id),
        "rating_label": t.rating_label,
        "hotline_label": t.hotline_label,
        "hotline_number": t.hotline_number,
        "first_responder": t.first_responder,
        "footer": t.footer,
        "reprint": bool(info.reprint),
        "reminder": bool(info.reminder),
        "test": False,
    }


def test_ticket_document(cfg: GatedConfig, now: datetime | None = None) -> dict[str, Any]:
    """A sample for the guard's "print test ticket": every field filled, marked as a test."""
    when = now or datetime.now(ZoneInfo(cfg.site.timezone))
    service = next(iter(cfg.services.values()), None)
    info = TicketInfo(ticket_id=f"TEST-{when:%Y%m%d%H%M%S}", number="A000",
                      service_name=service.name if service else "测试",
                      issued_at=when, ahead=0, wait_min=0, priority=True,
                      priority_label=cfg.ticket.priority_mark,
                      masked_name="张*" if cfg.ticket.print_masked_name else "")
    doc = ticket_document(cfg, info)
    doc["test"] = True
    return doc


test_ticket_document.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
