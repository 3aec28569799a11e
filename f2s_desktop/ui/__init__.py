"""Qt widgets of the desktop app (everything Qt lives in this package and worker.py)."""
