"""One exception type for bad input, so the CLI can print its message without a traceback."""


class DataError(ValueError):
    """Bad or missing input data; the message names the file or folder and says what to do."""
