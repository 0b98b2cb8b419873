"""`python -m tui.cli`: the same as the `btmon-tui` command."""

from tui.cli.main import main

raise SystemExit(main())
