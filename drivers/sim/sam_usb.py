"""A USB desktop ID card reader for pyusb: a backend (pyusb's ``IBackend``) whose one device
is a SAM reader module speaking the real GA/T 467 bytes over a bulk OUT / bulk IN endpoint
pair of a vendor-class interface, the way 0400:C35A readers do.

The module is ``SamReaderSim``'s (the same card logic, fault knobs, framing and replies as
the pty simulator), fed by ``bulk_write`` instead of a pty; its replies are cut into packets
of ``wMaxPacketSize`` for ``bulk_read``, as a USB device sends them. Hand it to
``usb.core.find(backend=...)`` (``SamCardReader(..., usb_backend=...)``, ``gated probe``).
"""

from __future__ import annotations

import array
import errno
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from usb.backend import IBackend
from usb.core import USBError, USBTimeoutError

from drivers.sim.sam_reader import SamReaderSim

EP_OUT, EP_IN, PACKET = 0x02, 0x81, 64


@dataclass
class _Desc:
    """A descriptor: pyusb reads these attributes and nothing else."""

    fields: dict[str, Any]
    extra_descriptors: list[int] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


class UsbSamModule(SamReaderSim):
    """``SamReaderSim``'s module without a pty: requests in through ``feed``, replies out
    to ``replies``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replies: deque[int] = deque()
        self.cond = threading.Condition()
        self.plugged = True

    def feed(self, data: bytes) -> None:
        self._on_data(data, time.perf_counter())

    def _write(self, data: bytes) -> bool:  # the module's reply goes to the IN endpoint
        with self.cond:
            self.replies.extend(data)
            self.cond.notify_all()
        return True


class SamUsbBackend(IBackend):
    def __init__(self, module: UsbSamModule | None = None, *, vendor: int = 0x0400,
                 product: int = 0xC35A, serial: str = "SIM0001") -> None:
        self.module = module or UsbSamModule()
        self.vendor, self.product, self.serial = vendor, product, serial
        self.claimed: set[int] = set()
        self.configuration = 0

    # ------------------------------------------------------------------ enumeration
    def enumerate_devices(self) -> Any:
        if self.module.plugged:
            yield "sam0"

    def get_device_descriptor(self, dev: Any) -> _Desc:
        return _Desc({"bLength": 18, "bDescriptorType": 1, "bcdUSB": 0x0110,
                      "bDeviceClass": 0, "bDeviceSubClass": 0, "bDeviceProtocol": 0,
                      "bMaxPacketSize0": 64, "idVendor": self.vendor,
                      "idProduct": self.product, "bcdDevice": 0x0100, "iManufacturer": 1,
                      "iProduct": 2, "iSerialNumber": 3, "bNumConfigurations": 1,
                      "address": 7, "bus": 1, "port_number": 2, "port_numbers": (2,),
                      "speed": 2})

    def get_configuration_descriptor(self, dev: Any, config: int) -> _Desc:
        return _Desc({"bLength": 9, "bDescriptorType": 2, "wTotalLength": 32,
                      "bNumInterfaces": 1, "bConfigurationValue": 1, "iConfiguration": 0,
                      "bmAttributes": 0x80, "bMaxPower": 50})

    def get_interface_descriptor(self, dev: Any, intf: int, alt: int, config: int) -> _Desc:
        if intf != 0 or alt != 0:
            raise IndexError("no such interface")
        return _Desc({"bLength": 9, "bDescriptorType": 4, "bInterfaceNumber": 0,
                      "bAlternateSetting": 0, "bNumEndpoints": 2, "bInterfaceClass": 0xFF,
                      "bInterfaceSubClass": 0, "bInterfaceProtocol": 0, "iInterface": 0})

    def get_endpoint_descriptor(self, dev: Any, ep: int, intf: int, alt: int,
                                config: int) -> _Desc:
        if ep > 1:
            raise IndexError("no such endpoint")
        return _Desc({"bLength": 7, "bDescriptorType": 5,
                      "bEndpointAddress": (EP_OUT, EP_IN)[ep], "bmAttributes": 0x02,
                      "wMaxPacketSize": PACKET, "bInterval": 0, "bRefresh": 0,
                      "bSynchAddress": 0})

    # ------------------------------------------------------------------ the device
    def _alive(self) -> None:
        if not self.module.plugged:
            raise USBError("No such device (it may have been disconnected)", errno.ENODEV,
                           -4)

    def open_device(self, dev: Any) -> str:
        self._alive()
        return "handle"

    def close_device(self, dev_handle: Any) -> None:
        self.claimed.clear()

    def set_configuration(self, dev_handle: Any, config_value: int) -> None:
        self.configuration = config_value

    def get_configuration(self, dev_handle: Any) -> int:
        return self.configuration

    def claim_interface(self, dev_handle: Any, intf: int) -> None:
        self.claimed.add(intf)

    def release_interface(self, dev_handle: Any, intf: int) -> None:
        self.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: Any, intf: int) -> bool:
        return False

    def ctrl_transfer(self, dev_handle: Any, bmRequestType: int, bRequest: int,
                      wValue: int, wIndex: int, data: Any, timeout: int) -> int:
        """GET_DESCRIPTOR of strings only (what pyusb's ``serial_number`` asks)."""
        self._alive()
        if bmRequestType != 0x80 or bRequest != 0x06 or wValue >> 8 != 0x03:
            raise USBError("Pipe error", errno.EPIPE, -9)
        index = wValue & 0xFF
        if index == 0:
            desc = bytes((4, 3, 0x09, 0x04))  # one language: en-US
        else:
            text = {1: "SIM", 2: "ID card reader", 3: self.serial}.get(index, "")
            raw = text.encode("utf-16-le")
            desc = bytes((2 + len(raw), 3)) + raw
        n = min(len(data), len(desc))
        for i in range(n):
            data[i] = desc[i]
        return n

    def bulk_write(self, dev_handle: Any, ep: int, intf: int, data: Any, timeout: int) -> int:
        self._alive()
        if ep != EP_OUT or intf not in self.claimed:
            raise USBError("Pipe error", errno.EPIPE, -9)
        payload = bytes(data)
        self.module.feed(payload)
        return len(payload)

    def bulk_read(self, dev_handle: Any, ep: int, intf: int, buff: array.array[int],
                  timeout: int) -> int:
        self._alive()
        if ep != EP_IN or intf not in self.claimed:
            raise USBError("Pipe error", errno.EPIPE, -9)
        m = self.module
        with m.cond:
            if not m.replies and not m.cond.wait_for(lambda: bool(m.replies),
                                                     (timeout or 1000) / 1000):
                raise USBTimeoutError("Operation timed out", errno.ETIMEDOUT, -7)
            n = min(len(buff), PACKET, len(m.replies))
            for i in range(n):
                buff[i] = m.replies.popleft()
        return n


__all__ = ["SamUsbBackend", "UsbSamModule"]
