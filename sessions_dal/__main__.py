"""``python -m sessions_dal``: the same command line as ``sessions-dal``."""

from .cli import main

raise SystemExit(main())
