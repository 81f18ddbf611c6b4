"""`python -m genstudio` is the same as the `genstudio` command."""

from genstudio.cli import main

raise SystemExit(main())
