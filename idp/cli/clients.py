"""`idp clients` commands."""

COMMANDS: list = []
