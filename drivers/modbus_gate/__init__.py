"""A barrier or door gate behind a Modbus RTU relay board: ``driver`` (the arm's model),
``board`` (relays and inputs), ``buttons`` (visitor push-buttons), ``settings``."""

from drivers.modbus_gate.settings import GateCoils, GateInputMap, ModbusGateConfig

__all__ = ["GateCoils", "GateInputMap", "ModbusGateConfig"]
