"""``face2scene bench quality|speed|learned``: the numbers behind the method's claims (see
:mod:`face2scene.bench`)."""
from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    from .. import bench
    from ..bench import quality
    b = subparsers.add_parser("bench", help="quality and speed benchmarks (tables, JSON, plots)")
    bench.register(b)
    quality.add_arguments(b)
    b.set_defaults(func=bench.main)
    from ..bench import batch as bench_batch
    bench_batch.register(b)  # `bench batch`: its kind, options and dispatch
    from ..bench import faces as bench_faces
    bench_faces.register(b)  # `bench faces`: its kind, options and dispatch
    return b
