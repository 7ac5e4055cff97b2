"""condfip: zero-shot structural causal models (Cond-FiP)."""

from condfip.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
