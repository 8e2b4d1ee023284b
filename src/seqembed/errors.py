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


class UnknownWordError(InputError, KeyError):
    """A word that is not in an embedding table.

    A ``KeyError`` (as ``dict`` and gensim's ``KeyedVectors`` raise), and an
    ``InputError`` (so the CLI prints it as one line). The message names the
    word, the side and the size of the vocabulary::

        '量子' is not in the src vocabulary (378 words)
    """

    def __init__(self, word: str, side: str | None = None, n_words: int | None = None):
        vocabulary = f"the {side} vocabulary" if side else "the vocabulary"
        size = f" ({n_words:,} words)" if n_words is not None else ""
        super().__init__(f"{word!r} is not in {vocabulary}{size}")
        self.word = word
        self.side = side
        self.n_words = n_words

    def __str__(self) -> str:  # KeyError's own would quote the whole message
        return str(self.args[0])
