"""The one exception type users see for bad input."""


class InputError(ValueError):
    """Bad input: the message names the offending node, column or file and says how to fix it."""
