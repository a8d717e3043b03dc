"""The package version, in a module of its own so that any layer can import it without
importing the package face (``mer/__init__.py``)."""

__version__ = "0.1.0"
