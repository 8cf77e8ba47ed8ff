"""`idp keys` commands."""

COMMANDS: list = []
