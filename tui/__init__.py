"""btmon-tui's user interfaces: the Textual app and the headless command line."""
