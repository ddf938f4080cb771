"""Modbus RTU: the codec (``rtu``, pure functions of bytes) and the serial master (``link``)."""
