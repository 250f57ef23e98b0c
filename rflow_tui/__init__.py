"""rflow: walk troubleshooting trees against help-desk tickets, in the terminal."""

__version__ = "0.1.0"
