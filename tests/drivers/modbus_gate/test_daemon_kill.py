"""The real daemon (``gated run``) killed with SIGKILL in the middle of a gate's OPEN pulse, on
pymodbus boards: on the board-timed profiles the board ends the pulse by itself and no relay
stays energised; on a host-timed one the relay stays closed until the next daemon opens the
board and switches it off (the README says which profiles are which)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gated.app.simulate import SimBooth
from tests.support.cards import ADULT
from tests.support.daemon import DaemonProcess
from tests.support.modbus_boards import PymodbusBoard
from tests.support.polling import holds_within, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROFILES = {"waveshare_v2": 'profile = "waveshare_v2"\n',
            "r4d3b16": 'profile = "r4d3b16"\ninputs_address = 2\n',
            "coil": ""}


def _use_board(sim: SimBooth, board: PymodbusBoard, family: str) -> None:
    text = sim.config_path.read_text(encoding="utf-8")
    table = f'[devices.hall_gate]\ntype = "modbus_gate"\nport = "{sim.hall.port}"\n'
    assert table in text
    sim.config_path.write_text(text.replace(table, (
        f'[devices.hall_gate]\ntype = "modbus_gate"\nport = "{board.port}"\n'
        f'{PROFILES[family]}pulse_ms = 2000\n')), encoding="utf-8")


@pytest.mark.parametrize("family", list(PROFILES))
def test_killed_mid_pulse(tmp_path: Path, family: str) -> None:
    for run in ("run1", "run2"):
        (tmp_path / run).mkdir()
    with SimBooth(tmp_path / "sim", mqtt="off") as sim, PymodbusBoard(family) as board:
        _use_board(sim, board, family)
        with DaemonProcess(sim.config_path, tmp_path / "run1") as d:
            d.wait_for("READY=1")
            wait_for(lambda: any(fc in (5, 6) for _, fc, _, _ in board.model.requests), 20,
                     "the daemon to open the board")
            sim.reader.present(ADULT)  # a visitor: the hall gate opens
            wait_for(lambda: 0 in board.model.energised(), 20, "the OPEN relay to close")
            d.kill()  # SIGKILL mid-pulse: nothing more is sent
        if family == "coil":  # host-timed: nobody is left to end the pulse
            assert not holds_within(lambda: not board.model.energised(), 3.0)
            with DaemonProcess(sim.config_path, tmp_path / "run2") as d:
                d.wait_for("READY=1")
                wait_for(lambda: not board.model.energised(), 20,
                         "the restarted daemon to switch it off")
                assert d.terminate() == 0
        else:  # board-timed: the board's own timer ends it
            wait_for(lambda: not board.model.energised(), 10, "the board to end the pulse")
        assert board.model.energised() == []
