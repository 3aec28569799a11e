"""Batch throughput and peak memory per worker: the same as ``face2scene bench batch`` (kept so
older notes keep working; see face2scene/bench/batch.py).

    PYTHONPATH=. python scripts/bench_batch.py [--photos 8] [--side 320] [--workers 1,2] [--ray local|none]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    from face2scene.cli import main
    sys.exit(main(["bench", "batch", *sys.argv[1:]]))
