"""The one exception type that reaches the user as a one-line message."""


class InputError(Exception):
    """A problem with the user's input: a file, a line, a setting.

    The CLI prints ``str(error)`` on one line and exits with status 2; no
    traceback. Messages name the file and, where there is one, the line:
    ``corpus.tsv:17: expected at least 2 tab-separated columns, found 1``.
    """

    def __init__(self, message: str, path: object = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line
