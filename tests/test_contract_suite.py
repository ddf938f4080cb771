"""Everything the suite made the booth produce matched the MQTT contract (the checks are in
tests/support/contract_check.py; this test runs last and shows the report as a failure)."""

from __future__ import annotations

import pytest

from tests.support import contract_check


@pytest.mark.runs_last
def test_everything_the_suite_produced_matches_the_contract(
        request: pytest.FixtureRequest) -> None:
    rec = contract_check.ACTIVE
    assert rec is not None, "tests/conftest.py installs the contract checks"
    assert not rec.violations, rec.report()
    if len(request.session.items) > 50:  # a real run, not this file alone
        assert rec.checked["event"] > 100 and rec.checked["status"] and rec.checked["reply"], \
            rec.summary()
