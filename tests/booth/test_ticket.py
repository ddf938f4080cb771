"""The ticket document: everything a printed ticket shows, as plain JSON types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gated.booth.ticket import rating_url, test_ticket_document, ticket_document
from tests.support.tickets import cfg, info


def test_document_fields() -> None:
    doc = ticket_document(cfg(footer="谢谢"), info(priority=True))
    assert doc["booth_name"] == "east"  # no display name configured: the id
    assert doc["time"] == "2026-03-03 00:30"  # local time, next day in Shanghai
    assert doc["issued_at"] == "2026-03-03T00:30:00+08:00"
    assert doc["priority_mark"] == "优先"  # no label: the configured mark
    assert doc["masked_name"] == "" and doc["footer"] == "谢谢"
    assert doc["hotline_label"] == "办不成事找局长" and doc["first_responder"] == "首问负责台"


def test_document_local_time_from_any_offset() -> None:
    when = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    assert ticket_document(cfg(), info(issued_at=when))["time"] == "2026-03-02 09:00"


def test_document_refuses_naive_time() -> None:
    with pytest.raises(ValueError):
        ticket_document(cfg(), info(issued_at=datetime(2026, 3, 2, 9, 0)))


@pytest.mark.parametrize(("template", "expected"), [
    ("https://x/r?t={ticket_id}", "https://x/r?t=T%2F1%20a"),
    ("https://x/{site}/{booth}/{ticket_id}", "https://x/town-1/east/T%2F1%20a"),
    ("https://x/r?t={ticket_id}&x={other}", "https://x/r?t=T%2F1%20a&x={other}"),
])
def test_rating_url(template: str, expected: str) -> None:
    assert rating_url(template, ticket_id="T/1 a", site="town-1", booth="east") == expected


@pytest.mark.parametrize(("configured", "name", "expected"), [
    (False, "张*", ""), (True, "张*", "张*"), (True, "欧阳**", "欧阳**"),
    (True, "张三", ""), (True, "", "")])
def test_masked_name(configured: bool, name: str, expected: str) -> None:
    doc = ticket_document(cfg(print_masked_name=configured), info(masked_name=name))
    assert doc["masked_name"] == expected


def test_test_ticket_is_marked_and_complete() -> None:
    doc = test_ticket_document(cfg(print_masked_name=True),
                               datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    assert doc["test"] and doc["priority"] and doc["masked_name"] == "张*"
    assert doc["ticket_id"].startswith("TEST-")
