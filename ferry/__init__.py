"""The `ferry` command (ferry.cli): the entry point above every other Ferry package."""
