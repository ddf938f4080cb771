"""A config and a ticket for the ticket-document and layout tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gated.booth.ticket import TicketInfo
from gated.config import GatedConfig


def cfg(**ticket: Any) -> GatedConfig:
    return GatedConfig.model_validate({"site": {"id": "town-1", "timezone": "Asia/Shanghai"},
                                       "booth": {"id": "east"}, "ticket": ticket})


def info(**over: Any) -> TicketInfo:
    values: dict[str, Any] = dict(ticket_id="T1", number="B012", service_name="社保医保",
                                  issued_at=datetime(2026, 3, 2, 16, 30, tzinfo=UTC),
                                  ahead=0, wait_min=5)
    values.update(over)
    return TicketInfo(**values)
