"""The one exception type users see for bad input, and condfip's warning classes."""


class InputError(ValueError):
    """Bad input: the message names the offending node, column or file and says how to fix it."""


class CondfipWarning(UserWarning):
    """Base class of every warning condfip issues (filter them all with ``warnings.filterwarnings``)."""


class InputWarning(CondfipWarning):
    """The input is accepted, but condfip's assumptions may not fit it (e.g. a binary column)."""


class ExtrapolationWarning(CondfipWarning):
    """A request lies beyond the context's range (an intervention value, a shift's result or a query row):
    the mechanisms there were never seen in the data, so the answer is an extrapolation (a guess)."""
