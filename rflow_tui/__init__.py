"""rflow: walk troubleshooting trees against help-desk tickets, in the terminal."""

from rflow_tui import _start  # noqa: F401  (records process start before anything heavy)

__version__ = "0.1.0"
