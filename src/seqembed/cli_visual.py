"""Command-line wiring for pictures: plot, attention (being written)."""


def add_commands(commands) -> None:
    """Register the picture commands (none yet)."""
