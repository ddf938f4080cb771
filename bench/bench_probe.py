"""How long ``gated probe`` takes per port, by what is on it, next to a baseline measured in
the same run: one bare status round trip to the same simulator.

Each port is probed as ``gated probe --port`` does (``drivers.probe.ports.probe_port``):
printer questions at up to four speeds, the SAM status at up to five, then Modbus ids 1-16.
The devices are the simulators on ptys (and pymodbus as a Waveshare board), so the figures
are the probe's own waits (reply windows, Modbus timeouts for silent ids), not a wire's.
Also raster QR: the bytes and build time of a ``GS v 0`` rating code against the native
``GS ( k`` commands. Plain script: ``.venv/bin/python bench/bench_probe.py``; exits 0.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import figure

from drivers.escpos_printer.codec import qr
from drivers.escpos_printer.raster import qr_raster
from drivers.probe.ports import probe_port
from drivers.sam_idcard.codec import Command, build_request
from drivers.serial_link import open_serial
from drivers.sim.printer import PrinterSim
from drivers.sim.sam_reader import SamReaderSim
from tests.support.modbus_boards import PymodbusBoard

URL = "https://pj.example.gov.cn/r?t=01J9ZK3T7Q&s=town-1&b=east"


def round_trip(port: str, request: bytes, n: int = 20) -> float:
    ser = open_serial(port, baudrate=115200, timeout=0.5)
    times = []
    try:
        for _ in range(n):
            ser.reset_input_buffer()
            t = time.perf_counter()
            ser.write(request)
            ser.read(1)
            times.append(time.perf_counter() - t)
            time.sleep(0.01)
            ser.reset_input_buffer()
    finally:
        ser.close()
    return statistics.median(times)


def timed_probe(port: str) -> tuple[float, str]:
    t = time.perf_counter()
    found = probe_port(port)
    return time.perf_counter() - t, found[0].summary if found else "nothing"


BENCH = "probe"


def main() -> int:
    import tempfile
    out = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    print("| port holds | probe time | found | baseline: one status round trip |")
    print("|---|---|---|---|")
    with SamReaderSim() as sam:
        base = round_trip(sam.port, build_request(Command.STATUS))
        took, what = timed_probe(sam.port)
        print(f"| SAM module, 115200 | {took:.2f} s | {what} | {base * 1000:.1f} ms |")
        figure(BENCH, "probe a port holding a SAM module (115200)", took, "s",
               baseline=base, baseline_name="one status round trip", note=what)
        sam.baudrate = 9600
        took, what = timed_probe(sam.port)
        print(f"| SAM module, 9600 | {took:.2f} s | {what} | – |")
    with PrinterSim(out) as printer:
        base = round_trip(printer.port, b"\x10\x04\x01")
        took, what = timed_probe(printer.port)
        print(f"| ESC/POS printer | {took:.2f} s | {what} | {base * 1000:.1f} ms |")
        figure(BENCH, "probe a port holding an ESC/POS printer", took, "s",
               baseline=base, baseline_name="one status round trip", note=what)
    with PymodbusBoard("waveshare_v2", address=5) as board:
        took, what = timed_probe(board.port)
        print(f"| Waveshare V2 board, id 5 | {took:.2f} s | {what} | – |")
    with PrinterSim(out, one_way=True) as silent:
        took, what = timed_probe(silent.port)
        print(f"| nothing answering (a one-way printer) | {took:.2f} s | {what} | – |")
        figure(BENCH, "probe a port where nothing answers", took, "s", note=what)

    t = time.perf_counter()
    for _ in range(50):
        native = qr(URL, 6)
    t_native = (time.perf_counter() - t) / 50
    t = time.perf_counter()
    for _ in range(50):
        raster = qr_raster(URL, 6, 576)
    t_raster = (time.perf_counter() - t) / 50
    print(f"\nrating QR: native GS ( k {len(native)} bytes, {t_native * 1e6:.0f} us to build; "
          f"raster GS v 0 {len(raster)} bytes, {t_raster * 1000:.1f} ms to build, "
          f"{len(raster) * 10 / 9600:.1f} s on the wire at 9600 baud")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
