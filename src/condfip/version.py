"""The package version, in one place (``condfip.__version__``; saved SCMs and simulated datasets record it)."""

__version__ = "0.1.0"
