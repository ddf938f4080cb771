"""Working days, deadlines and the desk's worklist order, and the centre config's checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gated.centre.cases import add_working_days, deadline, default_list, is_working_day
from gated.centre.config import (
    CalendarConfig,
    CaseList,
    CentreConfig,
    CentreConfigError,
    load_centre_config,
)

TZ = ZoneInfo("Asia/Shanghai")
# 2026's National Day holiday as a county would enter it: 1-7 October off, two Saturdays worked
GOLDEN_WEEK = CalendarConfig(holidays=[date(2026, 10, d) for d in range(1, 8)],
                             workdays=[date(2026, 9, 26), date(2026, 10, 10)])


def test_working_days_skip_weekends_and_holidays_and_count_swapped_saturdays() -> None:
    assert is_working_day(date(2026, 9, 25), GOLDEN_WEEK)  # Friday
    assert is_working_day(date(2026, 9, 26), GOLDEN_WEEK)  # a Saturday worked
    assert not is_working_day(date(2026, 9, 27), GOLDEN_WEEK)  # Sunday
    assert not is_working_day(date(2026, 10, 5), GOLDEN_WEEK)  # Monday, holiday
    # opened on Wednesday 30 September: 1st working day is Thursday 8 October
    assert add_working_days(date(2026, 9, 30), 1, GOLDEN_WEEK) == date(2026, 10, 8)
    assert add_working_days(date(2026, 9, 30), 3, GOLDEN_WEEK) == date(2026, 10, 10)
    assert add_working_days(date(2026, 9, 30), 15, GOLDEN_WEEK) == date(2026, 10, 27)


def test_a_deadline_is_the_end_of_the_last_working_day_in_the_centres_timezone() -> None:
    # 17:30 UTC on Friday is already Saturday 01:30 in Shanghai: Saturday counts as opening day
    opened = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
    due = deadline(opened, 1, CalendarConfig(), TZ)
    assert due == datetime(2026, 11, 24, 0, 0, tzinfo=TZ)  # end of Monday 23 November


def test_default_lists() -> None:
    cfg = CentreConfig(dsn="x")
    assert default_list("escalation", None, cfg) is CaseList.PRIORITY
    assert default_list("callback", "very_dissatisfied", cfg) is CaseList.PRIORITY
    assert default_list("callback", "dissatisfied", cfg) is CaseList.ONGOING
    assert cfg.lists[CaseList.ONGOING].limit_working_days == 15


def test_config_problems_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "centre.toml"
    path.write_text('[centre]\ndsn = "x"\ntimezone = "Mars/Base"\n[centre.ingest]\n'
                    'batch_max = 0\nbatchmax = 3\n[centre.lists.explain]\nlabel = "解释办"\n'
                    "limit_working_days = 10\n")
    with pytest.raises(CentreConfigError) as e:
        load_centre_config(path)
    text = str(e.value)
    assert "timezone" in text and "ingest.batch_max" in text and "ingest.batchmax" in text
    path.write_text('[centre]\ndsn = "x"\n[centre.lists.explain]\nlabel = "解释办"\n'
                    "limit_working_days = 10\n")
    cfg = load_centre_config(path)
    assert cfg.lists[CaseList.EXPLAIN].limit_working_days == 10
    assert cfg.lists[CaseList.PRIORITY].limit_working_days == 3  # the others keep defaults
    with pytest.raises(CentreConfigError):
        CentreConfig().conninfo()


def test_the_readmes_example_config_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Configuration (`/etc/gated/centre.toml`", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "centre.toml"
    path.write_text(example, encoding="utf-8")
    cfg = load_centre_config(path)
    assert cfg.mqtt.group == "centre-ingest" and cfg.ingest.batch_max == 500
    assert cfg.lists[CaseList.PRIORITY].label == "优先办"
    assert is_working_day(date(2026, 10, 10), cfg.calendar)
    assert not is_working_day(date(2026, 10, 5), cfg.calendar)
