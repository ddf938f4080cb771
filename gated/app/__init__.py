"""The top layer: the ``daemon`` that wires everything, the ``cli``, the local ``control``
socket, ``logs`` and ``simulate``. Nothing imports it but the console script."""
