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

A device type with several kinds of hardware (relay boards, printer transports) keeps one
model per kind, chosen by a key of its table (``profile = "..."``): ``Variants`` below builds
them and tells the config which one a table is.

``Strict`` is the base of every model in the config, the core's sections included: unknown
keys are errors (a typo never silently does nothing) and settings are frozen.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSettings(Strict):
    enabled: bool = True

    #: the device reads appointment codes (the core checks it can verify them)
    reads_appointment_codes: ClassVar[bool] = False
    #: "module:Class" of the driver for this model when it is not the type's own (a gate
    #: kind with a model of its own, ``drivers.modbus_gate.kinds``); None: the registry's
    driver: ClassVar[str | None] = None

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


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Axis:
    """One key of a device table that picks part of its settings model (``profile = ...``).

    ``choices`` maps each accepted value to the settings mixin that value brings; ``default``
    is the value when the key is left out, so a table written before the key existed keeps
    its meaning."""

    key: str
    default: str
    choices: Mapping[str, type[Strict]]


class Variants:
    """A device type whose table picks its settings model with one or more keys.

    ``profile = "waveshare_v2"`` (the relay board) and ``gate = "swing"`` (what it drives)
    each choose a mixin; the model of a table is the combination of the mixins chosen and
    ``base`` (the settings every variant shares), built once here. The config validates a
    table against exactly that model, so an unknown key is an error with a did-you-mean as
    for any device, and an unknown value of a choosing key is reported with the choices.

    Adding a profile is a new mixin in the device's package and one entry in its ``Axis``:
    ``drivers/`` only (and a section of the example config).
    """

    def __init__(self, base: type[DeviceSettings], axes: Sequence[Axis], *, suffix: str = "",
                 prebuilt: Mapping[str, type[DeviceSettings]] | None = None) -> None:
        """``prebuilt``: combinations written out as classes (the default one, so code and
        tests can name it); each must subclass its mixins and ``base``."""
        self.base = base
        self.axes = tuple(axes)
        self.type_name = base.type_name()
        self.models: dict[str, type[DeviceSettings]] = {}
        for combo in itertools.product(*(a.choices.items() for a in self.axes)):
            names = [name for name, _ in combo]
            mixins: tuple[type[BaseModel], ...] = tuple(mixin for _, mixin in combo)
            tag = self.tag_of(names)
            model = (prebuilt or {}).get(tag)
            if model is None:
                cls_name = "".join(n.title().replace("_", "") for n in names) + suffix
                bases: tuple[type[BaseModel], ...] = (*mixins, base)
                built: Any = create_model(cls_name, __base__=bases,
                                          __module__=base.__module__)
                model = built
            elif not all(issubclass(model, m) for m in (*mixins, base)):
                raise TypeError(f"{model.__name__} must subclass {mixins} and {base}")
            self.models[tag] = model

    @staticmethod
    def tag_of(values: Sequence[str]) -> str:
        return "+".join(values)

    def values(self, node: Any) -> list[str] | None:
        """The choosing keys' values of a raw table or a settings object (defaults filled)."""
        out = []
        for axis in self.axes:
            if isinstance(node, dict):
                value = node.get(axis.key, axis.default)
            else:
                value = getattr(node, axis.key, None)
            if not isinstance(value, str):
                return None
            out.append(value)
        return out

    def tag(self, node: Any) -> str | None:
        values = self.values(node)
        return None if values is None else self.tag_of(values)

    def model_for(self, node: Any) -> type[DeviceSettings] | None:
        tag = self.tag(node)
        return None if tag is None else self.models.get(tag)

    def annotated(self) -> Any:
        """The tagged union pydantic validates a table of this type with."""
        members = tuple(Annotated[m, Tag(t)] for t, m in self.models.items())
        return Annotated[Union[members], Discriminator(self.tag)]  # noqa: UP007

    def problem(self, node: Any) -> tuple[str, str] | None:
        """(key, message) for a choosing key whose value is not one of its choices."""
        for axis in self.axes:
            value = node.get(axis.key, axis.default) if isinstance(node, dict) else None
            if value in axis.choices:
                continue
            known = sorted(axis.choices)
            match = difflib.get_close_matches(str(value), known, n=1, cutoff=0.6)
            hint = f"did you mean {match[0]!r}? " if match else ""
            return axis.key, (f"unknown {axis.key} {value!r} for {self.type_name}; {hint}"
                              f"known: {', '.join(known)}")
        return None
