"""`idp demo` commands."""

COMMANDS: list = []
