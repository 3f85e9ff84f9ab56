"""The package version, in one place (the run records and cards name it)."""

__version__ = "0.1.0"
