"""SafeCity: an open platform for a city's Safe City command centre."""

__version__ = "0.1.0"
