"""Command-line wiring for the HTML report (being written)."""


def add_commands(commands) -> None:
    """Register the report command (none yet)."""
