"""A desktop ID card reader on USB: the same GA/T 467 frames over bulk (or interrupt)
endpoints of a vendor-class interface, through pyusb and libusb (Debian's libusb-1.0-0).

Kept thin on purpose: it finds the device by ``usb_id`` (and serial number), claims the
interface (detaching a kernel driver if one holds it), takes its first OUT and IN endpoints
and offers the four calls the reader's transact loop makes on a serial port (``write``,
``read``, ``in_waiting``, ``reset_input_buffer``); framing, checksums and timeouts stay in
the driver, which frames replies by their length field whatever the packet size. Every
libusb failure is an ``OSError`` (pyusb's ``USBError``), which the driver already treats as
the device vanishing; a read that times out is just no data.

pyusb is optional (the ``usb`` extra): without it the reader is DISABLED, not the daemon.
Tested here through pyusb with a backend that speaks the real SAM bytes
(``drivers.sim.sam_usb``); this machine has no USB reader.
"""

from __future__ import annotations

from typing import Any

from drivers.base import DeviceUnavailable, load_optional

IN, ENDPOINT_TYPES = 0x80, (0x02, 0x03)  # direction bit; bulk, interrupt
RESET_READS = 8  # packets drained before a request at most


class UsbSamLink:
    def __init__(self, usb_id: str, *, serial: str = "", interface: int = 0,
                 timeout: float = 0.02, backend: Any = None) -> None:
        core = load_optional("usb.core", "usb")
        util = load_optional("usb.util", "usb")
        vendor, product = (int(x, 16) for x in usb_id.split(":"))
        match = (lambda d: _serial_of(d) == serial) if serial else None
        dev = core.find(idVendor=vendor, idProduct=product, backend=backend,
                        custom_match=match)
        if dev is None:
            raise DeviceUnavailable(f"no USB device {usb_id}" + (f" serial {serial}"
                                                                  if serial else ""))
        self.name = f"usb:{usb_id}"
        self.timeout = timeout
        self._core, self._util, self._dev = core, util, dev
        try:
            if dev.is_kernel_driver_active(interface):
                dev.detach_kernel_driver(interface)
        except (NotImplementedError, core.USBError):
            pass  # a backend without kernel drivers, or none attached
        try:
            dev.set_configuration()
            intf = dev.get_active_configuration()[(interface, 0)]
            eps = [e for e in intf if e.bmAttributes & 0x03 in ENDPOINT_TYPES]
            self._out = next(e for e in eps if not e.bEndpointAddress & IN)
            self._in = next(e for e in eps if e.bEndpointAddress & IN)
            util.claim_interface(dev, interface)
        except (StopIteration, KeyError) as e:
            self.close()
            raise DeviceUnavailable(f"{self.name}: no IN and OUT endpoint on interface "
                                    f"{interface}") from e
        except core.USBError as e:
            self.close()
            raise DeviceUnavailable(f"{self.name}: {e}") from e
        self._packet = int(self._in.wMaxPacketSize) or 64

    @property
    def in_waiting(self) -> int:
        return 0  # unknown until read: the driver reads one packet at a time

    def write(self, data: bytes) -> int:
        n: int = self._out.write(data, timeout=max(100, int(self.timeout * 1000) * 10))
        return n

    def read(self, size: int = 1) -> bytes:
        """One packet, or b"" when nothing came within ``timeout``."""
        try:
            return bytes(self._in.read(max(size, self._packet),
                                       timeout=max(1, int(self.timeout * 1000))))
        except self._core.USBTimeoutError:
            return b""

    def reset_input_buffer(self) -> None:
        for _ in range(RESET_READS):
            try:
                if not self._in.read(self._packet, timeout=1):
                    return
            except self._core.USBTimeoutError:
                return

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            self._util.dispose_resources(dev)


def _serial_of(dev: Any) -> str:
    try:
        return str(dev.serial_number or "")
    except (ValueError, OSError, NotImplementedError):
        return ""
