"""``python -m gated`` is the ``gated`` command."""

from gated.app.cli import main

raise SystemExit(main())
