"""`idp users` commands."""

COMMANDS: list = []
