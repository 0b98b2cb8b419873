"""The `btmon-tui` command line: one module per command, none of them importing Textual
(an import-linter contract and tests/cli/test_cli_imports.py keep it so). `main` parses and
dispatches; the TUI itself is started by tui/launch.py."""
