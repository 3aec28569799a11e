"""Fuzzing the loader: every file either loads right or is refused with one clear line.

The corpus (see corpus.py) is generated at test time: valid files of every mode and format,
each cut at many offsets (with and without its end marker), bit flips, header bombs and files
of other formats under photo names, plus hypothesis-driven mutations of valid files.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import corpus
from .checks import STATS, SUITE_LIMIT_S, check_file

pytestmark = pytest.mark.fuzz

CATEGORIES = {"valid": corpus.valid_files, "truncated": None, "bit_flips": None,
              "header_bombs": corpus.header_bombs, "wrong_formats": corpus.wrong_formats}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Dict[str, List[Tuple[corpus.Case, Path]]]:
    if STATS["start"] is None:
        STATS["start"] = time.perf_counter()
    valid = corpus.valid_files()
    made = {"valid": valid, "truncated": corpus.truncated(valid),
            "bit_flips": corpus.bit_flips(valid),
            "header_bombs": corpus.header_bombs(), "wrong_formats": corpus.wrong_formats()}
    root = tmp_path_factory.mktemp("fuzz")
    out = {}
    for category, cases in made.items():
        folder = root / category
        folder.mkdir()
        out[category] = []
        for c in cases:
            p = folder / c.name
            p.write_bytes(c.data)
            out[category].append((c, p))
    return out


def test_corpus_is_big_enough(files):
    assert sum(len(v) for v in files.values()) >= 500
    assert len(files["valid"]) >= 60 and len(files["header_bombs"]) >= 20


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_file_loads_right_or_is_refused_clearly(files, category, no_subprocesses):
    problems = []
    for case, path in files[category]:
        problems += check_file(path, size=case.size, refuse=case.refuse)
        STATS["files"] += 1
    STATS["end"] = time.perf_counter()
    assert no_subprocesses == []
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


# -- hypothesis: mutations of valid files -------------------------------------------------------

_BASES = {c.name: c.data for c in corpus.valid_files()
          if c.name in ("jpg_baseline.jpg", "jpg_progressive.jpg", "jpg_CMYK.jpg", "png_RGB.png",
                        "png_P_trns.png", "png_rgb16.png", "gif_anim.gif", "tif_lzw.tif",
                        "tif_jpeg.tif", "webp_lossy.webp", "webp_lossless_rgba.webp",
                        "bmp_RGB.bmp", "orient6_jpg.jpg")}

_where = st.floats(min_value=0.0, max_value=1.0)
_mutation = st.one_of(
    st.tuples(st.just("flip"), _where, st.integers(0, 7)),
    st.tuples(st.just("set"), _where, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _where, st.integers(1, 64)),
    st.tuples(st.just("insert"), _where, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("duplicate"), _where, st.integers(1, 256)),
    st.tuples(st.just("truncate"), _where, st.booleans()),
)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, where, arg in ops:
        pos = min(int(where * len(b)), max(len(b) - 1, 0))
        if op == "flip" and b:
            b[pos] ^= 1 << arg
        elif op == "set":
            b[pos:pos + len(arg)] = arg
        elif op == "delete":
            del b[pos:pos + arg]
        elif op == "insert":
            b[pos:pos] = arg
        elif op == "duplicate":
            b[pos:pos] = b[pos:pos + arg]
        elif op == "truncate":
            end = {b"\xff\xd8": b"\xff\xd9", b"GI": b"\x3b"}.get(bytes(b[:2]), b"")
            b = b[:pos] + (end if arg else b"")
    return bytes(b)


@pytest.fixture(scope="module")
def mutation_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_hypothesis")


@settings(max_examples=150, deadline=10_000, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(_BASES)), ops=st.lists(_mutation, min_size=1, max_size=4))
def test_mutated_files_keep_the_contract(mutation_dir, no_subprocesses, base, ops):
    STATS["examples"] += 1
    p = mutation_dir / f"m{STATS['examples']}_{base}"
    p.write_bytes(_mutate(_BASES[base], ops))
    problems = check_file(p)
    p.unlink()
    STATS["end"] = time.perf_counter()
    assert no_subprocesses == [] and not problems, problems


def test_suite_time_budget():
    """Runs last in this file: the whole fuzz run (generation included) stays within budget."""
    if STATS["start"] is None:
        pytest.skip("the corpus tests did not run")
    wall = time.perf_counter() - STATS["start"]
    assert wall <= SUITE_LIMIT_S, f"fuzz suite took {wall:.0f} s (budget {SUITE_LIMIT_S:.0f} s)"
