"""The settings every ``[devices.<name>]`` table shares, and the one strict model base.

Each driver package keeps its own settings model (``drivers/<device>/settings.py``): the
section of the TOML file that configures a device is defined next to the code that uses it, as
in Klipper, and the core builds its ``devices`` table from ``drivers.registry``.

What a settings model must do:
- subclass ``DeviceSettings`` (or ``SerialSettings`` for a device on a serial line);
- declare ``type: Literal["<type name>"]``: that literal is the device's type name in the
  config and in the registry, written once;
- subclass ``ZonedSettings`` too when the device belongs to a zone (a gate): the core checks the
  zone exists and passes the driver ``fail_open`` for it.

``Strict`` is the base of every model in the config, the core's sections included: unknown
keys are errors (a typo never silently does nothing) and settings are frozen.
"""

from __future__ import annotations

from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSettings(Strict):
    enabled: bool = True

    #: the device reads appointment codes (the core checks it can verify them)
    reads_appointment_codes: ClassVar[bool] = False

    @classmethod
    def type_name(cls) -> str:
        """The literal of the model's ``type`` field: the device type in the config."""
        field = cls.model_fields.get("type")
        args: tuple[Any, ...] = get_args(field.annotation) if field is not None else ()
        if len(args) != 1 or not isinstance(args[0], str):
            raise TypeError(f"{cls.__name__} must declare type: Literal['<type name>']")
        return args[0]


class SerialSettings(DeviceSettings):
    """A device on a serial line. ``port`` takes anything ``serial.serial_for_url`` does:
    ``/dev/serial/by-id/...`` in the field, a pty path or ``loop://`` in tests, and
    ``spy:///dev/ttyUSB0?file=/tmp/trace.txt`` to dump traffic during an installation."""

    port: str
    baudrate: int = Field(default=9600, gt=0)


class ZonedSettings(Strict):
    """Mixin of devices that serve one zone (gates): ``zone`` must name a ``[zones]`` entry."""

    zone: str
