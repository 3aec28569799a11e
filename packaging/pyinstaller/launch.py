"""PyInstaller entry point for the desktop app (a plain script; the package is imported)."""
import multiprocessing
import sys

if __name__ == "__main__":
    # the pipeline runs in a spawned child process: the frozen executable must route it
    multiprocessing.freeze_support()
    from f2s_desktop.app import main
    sys.exit(main())
