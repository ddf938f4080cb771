"""Decision-to-relay latency of the barrier gate driver, next to a bare serial write.

Figure: from the moment a command is handed to ``ModbusGate.execute`` to the moment the first
byte of the relay command is read on the other side of the gate's pty (by the relay board
simulator's thread). Target: p99 under 5 ms for ``open``. Baseline, measured in the same run
on the same pty and read by the same thread: a bare ``serial.write`` of the same 8-byte frame;
the difference is what the driver adds. Also shown:
- ``close``: it re-reads the inputs (FC02 round trip and the RTU inter-frame gap) before the
  close relay, by design, so it is slower;
- ``DeviceRunner.send(open)``: the same command through the supervisor's queue, which adds the
  wait until the runner's current ``poll()`` returns (the supervisor's code, not the driver's).

Between commands the driver is polled as the supervisor does (``poll(0.05)`` in a loop, inputs
read every 100 ms), for a random time, so commands land at random points of the poll cycle.

    python bench/bench_gate.py [--n 300]
"""

from __future__ import annotations

import argparse
import logging
import random
import time

import serial
import structlog
from common import latency_figures

from drivers.base import DeviceCommand, DeviceState
from drivers.modbus.rtu import CoilValue, write_coil_request
from drivers.modbus_gate.driver import ModbusGate
from drivers.modbus_gate.settings import ModbusGateConfig
from drivers.sim.relay_board import RelayBoardSim
from drivers.supervisor import DeviceRunner, wait_for_state

TARGET_MS = 5.0
BENCH = "gate"
OPEN_ON = write_coil_request(1, 0, CoilValue.ON)
CLOSE_ON = write_coil_request(1, 1, CoilValue.ON)


def arrival(sim: RelayBoardSim, frame: bytes, after: float, limit: float = 1.0) -> float:
    """perf_counter() at which the first byte of ``frame`` reached the board after ``after``."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        for t, seen in list(sim.request_log):
            if t >= after and seen == frame:
                return t
        time.sleep(0.0005)
    raise RuntimeError(f"the board never saw {frame.hex(' ')}")


def gate_config(sim: RelayBoardSim) -> ModbusGateConfig:
    return ModbusGateConfig(type="modbus_gate", port=sim.port, zone="public", pulse_ms=50,
                            auto_close_s=600, held_open_alarm_s=3600)


def baseline(sim: RelayBoardSim, n: int) -> list[float]:
    out = []
    with serial.serial_for_url(sim.port, baudrate=9600, timeout=0.5) as ser:
        for _ in range(n):
            time.sleep(random.uniform(0.002, 0.02))
            ser.reset_input_buffer()
            t0 = time.perf_counter()
            ser.write(OPEN_ON)
            ser.read(len(OPEN_ON))  # the echo, as the driver waits for it
            out.append(arrival(sim, OPEN_ON, t0) - t0)
            ser.write(write_coil_request(1, 0, CoilValue.OFF))
            ser.read(len(OPEN_ON))
    return out


def direct(sim: RelayBoardSim, n: int, action: str, frame: bytes) -> list[float]:
    out = []
    with ModbusGate("bench", gate_config(sim)) as gate:
        for i in range(n):
            end = time.monotonic() + random.uniform(0.06, 0.16)  # longer than the pulse
            while time.monotonic() < end:
                gate.poll(0.05)
            t0 = time.perf_counter()
            gate.execute(DeviceCommand(f"b{i}", action))
            out.append(arrival(sim, frame, t0) - t0)
            if action == "close":
                gate.execute(DeviceCommand(f"r{i}", "open"))
    return out


def supervised(sim: RelayBoardSim, n: int) -> list[float]:
    runner = DeviceRunner("bench", lambda: ModbusGate("bench", gate_config(sim)),
                          on_observation=lambda _n, _o: None,
                          on_state=lambda _n, _old, _new, _r: None)
    runner.start()
    out = []
    try:
        if not wait_for_state(runner, DeviceState.READY, 5.0):
            raise RuntimeError(f"gate not ready: {runner.reason}")
        for i in range(n):
            time.sleep(random.uniform(0.06, 0.16))
            t0 = time.perf_counter()
            runner.send(DeviceCommand(f"s{i}", "open"))
            out.append(arrival(sim, OPEN_ON, t0) - t0)
    finally:
        runner.stop()
    return out



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    random.seed(1)
    # info lines (device opened) would go through the same tty as the figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with RelayBoardSim(travel_s=0.05) as sim:
        base1 = baseline(sim, args.n)
        opens = direct(sim, args.n, "open", OPEN_ON)
        closes = direct(sim, args.n // 3, "close", CLOSE_ON)
        queued = supervised(sim, args.n // 3)
        base2 = baseline(sim, args.n)
    print("decision -> first byte of the relay command on the gate's pty")
    base = base1 + base2  # before and after: the pty's own cost, not drifting during the run
    latency_figures(BENCH, "ModbusGate.execute(open) -> relay frame", opens, baseline_s=base,
                    baseline_name="bare serial write", target_p99=f"< {TARGET_MS:g} ms")
    latency_figures(BENCH, "execute(close) incl. safety re-read", closes, baseline_s=base,
                    baseline_name="bare serial write")
    latency_figures(BENCH, "DeviceRunner.send(open) incl. queue wait", queued, baseline_s=base,
                    baseline_name="bare serial write")


if __name__ == "__main__":
    main()
