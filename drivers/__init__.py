"""gated's device drivers: the bytes of each device protocol, the thread that drives each
device, and simulators that speak the same bytes.

A top-level package of its own (installed next to ``gated``) because it is the lowest layer:
it never imports ``gated``. Each device is one sub-package (driver, pure codec, settings);
``drivers.registry`` maps a config ``type`` to its settings and driver, ``drivers.supervisor``
runs one I/O thread per device, and ``drivers.sim`` holds the simulators.
"""
