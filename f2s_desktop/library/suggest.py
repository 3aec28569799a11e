"""Suggestions for every unconfirmed face, kept up to date incrementally. Qt-free.

A full pass (every unconfirmed face against every person) costs tens of milliseconds of CPU on a
big library, and the app runs one after every naming: on a two-core machine that CPU is taken
from the GUI thread. Naming one face changes one person's gallery, so one column of the
face x person distance matrix; the rest is the same as last time. :class:`SuggestionCache` keeps
that matrix between passes and, each pass, asks the database what the state is now (the gallery's
entries with their embeddings, the unconfirmed faces with their stored suggestions) and recomputes
only what differs:

- the column of each person whose gallery entries changed (one distance block per such person);
- the rows of faces it has not seen (new, or unconfirmed again), all columns;
- then the matcher's rule only for the faces whose two nearest people can have changed (the
  changed person was, or now is, among them), whose rejections changed, or whose stored suggestion
  is not what the cache last left there (someone else wrote it).

The rule is face2scene's :class:`~face2scene.people.Matcher` applied to the kept distances, so the
result is what a full pass gives (``tests/desktop/test_suggest.py`` compares them). Thread-safe:
one pass at a time.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from face2scene.people import Match, Matcher

    from .db import Database

_CHUNK = 500   # ids per "IN (...)" query


def compare(old: Tuple[Optional[int], Optional[float], Optional[float]], m: "Match"
            ) -> Tuple[bool, Optional[Tuple]]:
    """(whether what the user sees changed: the person or the confidence in whole percent,
    the row to write or None when the stored values are close enough to keep) for a face whose
    stored suggestion is ``old`` (person, distance, confidence) and whose new match is ``m``."""
    old_p, old_d, old_c = old
    conf = None if m.person is None or m.confidence is None else round(m.confidence, 4)
    dist = m.distance
    shown = m.person != old_p or (conf is None) != (old_c is None) or \
        (conf is not None and round(conf * 100) != round(old_c * 100))
    if not shown and conf == old_c and ((dist is None and old_d is None) or
                                        (dist is not None and old_d is not None and abs(dist - old_d) < 1e-4)):
        return False, None
    return shown, (m.person, dist, conf)


def rule_on(matcher: "Matcher", keys: List[int], D: np.ndarray,
            excluded: Sequence[Sequence[int]]) -> List["Match"]:
    """``matcher.match_many``'s rule on distances already computed (``D[i, j]``: face i to
    person ``keys[j]``)."""
    given = _given_class()(matcher.metric, matcher.threshold)
    given.kd = (keys, D)
    return given.match_many(np.zeros((len(D), 0)), {}, excluded)


_GIVEN = None


def _given_class():
    global _GIVEN
    if _GIVEN is None:
        from face2scene.people import Matcher

        class Given(Matcher):
            """A Matcher whose person distances are given (the rule stays face2scene's)."""
            kd: Tuple[List[int], np.ndarray]

            def person_distances(self, faces, gallery):
                return self.kd
        _GIVEN = Given
    return _GIVEN


@dataclass
class _State:
    """One embedding size's kept matrix: rows = unconfirmed faces (by id), columns = people."""
    ids: np.ndarray                    # (n,) int64, ascending
    E: np.ndarray                      # (n, dim) embeddings
    keys: List[int]                    # person ids, ascending
    sigs: Dict[int, Tuple]             # person -> their gallery entries as of D
    D: np.ndarray                      # (n, len(keys)) person distances (the matcher's)
    rejected: np.ndarray               # (n,) the stored "rejected" JSON of each row (objects)
    belief: np.ndarray                 # (n, 3) person, distance, confidence stored (NaN: None)


def _distances(matcher: "Matcher", E: np.ndarray, galleries: Dict[int, np.ndarray]) -> np.ndarray:
    """``matcher.person_distances(E, galleries)[1]``, in blocks of rows small enough that BLAS
    multiplies each on the calling thread: for a bigger product OpenBLAS wakes its helper threads,
    which on a busy two-core machine spin for longer than the product takes (measured: twice the
    process CPU for one column of 2,800 faces). Same numbers."""
    g = sum(len(v) for v in galleries.values())
    step = max(32, 200_000 // max(1, g * E.shape[1]))
    if len(E) <= step:
        return matcher.person_distances(E, galleries)[1]
    return np.concatenate([matcher.person_distances(E[s:s + step], galleries)[1] for s in range(0, len(E), step)])


def _excluded(rejected: Sequence[Optional[str]]) -> List[Tuple[int, ...]]:
    return [() if r in ("[]", None) else tuple(json.loads(r)) for r in rejected]


def _masked(D: np.ndarray, keys: List[int], excluded: Sequence[Sequence[int]]) -> np.ndarray:
    """D with each face's rejected people at infinity (what the rule ranks)."""
    rows = [(i, ex) for i, ex in enumerate(excluded) if ex]
    if not rows:
        return D
    D = D.copy()
    col = {k: j for j, k in enumerate(keys)}
    for i, ex in rows:
        D[i, [col[k] for k in ex if k in col]] = np.inf
    return D


class SuggestionCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: Dict[int, _State] = {}
        self._key: Optional[Tuple[str, float]] = None
        self.last_stats: Dict[str, int] = {}   # what the last pass recomputed (for tests and benches)

    def clear(self) -> None:
        with self._lock:
            self._states, self._key = {}, None

    # ---------------------------------------------------------------- reading the database
    @staticmethod
    def _gallery(db: "Database") -> Dict[int, Dict[int, List[Tuple[str, int, bytes]]]]:
        """embedding size -> person -> [(kind, row id, embedding bytes)] in a stable order."""
        out: Dict[int, Dict[int, List[Tuple[str, int, bytes]]]] = {}
        rows = db.conn.execute(
            "SELECT person_id, 'r', id, embedding FROM refs WHERE embedding IS NOT NULL UNION ALL"
            " SELECT confirmed_person_id, 'f', id, embedding FROM faces"
            " WHERE confirmed_person_id IS NOT NULL AND embedding IS NOT NULL ORDER BY 2, 3").fetchall()
        for pid, kind, rid, b in rows:
            out.setdefault(len(b) // 4, {}).setdefault(int(pid), []).append((kind, int(rid), bytes(b)))
        return out

    @staticmethod
    def _embeddings(db: "Database", ids: Sequence[int], dim: int) -> np.ndarray:
        got: Dict[int, bytes] = {}
        for s in range(0, len(ids), _CHUNK):
            part = [int(i) for i in ids[s:s + _CHUNK]]
            got.update(db.conn.execute(f"SELECT id, embedding FROM faces WHERE id IN ({','.join('?' * len(part))})",
                                       part).fetchall())
        return np.frombuffer(b"".join(got[int(i)] for i in ids), dtype=np.float32).reshape(len(ids), dim)

    # ---------------------------------------------------------------- a pass
    def update(self, db: "Database", matcher: "Matcher") -> Dict[int, int]:
        """Bring every unconfirmed face's stored suggestion up to date; returns {photo id: faces
        whose suggestion, as shown, changed}. Writes only rows that changed."""
        with self._lock:
            key = (matcher.metric, float(matcher.threshold))
            if key != self._key:
                self._states, self._key = {}, key
            gallery = self._gallery(db)
            cur = db.conn.cursor()
            cur.row_factory = None   # plain tuples: this reads every unconfirmed face each pass
            rows = cur.execute(
                "SELECT id, photo_id, length(embedding), rejected, suggested_person_id, suggested_distance,"
                " suggested_confidence FROM faces WHERE confirmed_person_id IS NULL AND embedding IS NOT NULL"
                " ORDER BY id").fetchall()
            sizes = {r[2] for r in rows}
            by_dim: Dict[int, List[Tuple]] = {next(iter(sizes)) // 4: rows} if len(sizes) == 1 else {}
            if len(sizes) > 1:   # the face backend was changed: embeddings of two sizes
                for r in rows:
                    by_dim.setdefault(r[2] // 4, []).append(r)
            changed: Dict[int, int] = {}
            updates: List[Tuple] = []
            stats = {"rows": 0, "new_rows": 0, "columns": 0, "evaluated": 0}
            for dim, items in by_dim.items():
                self._update_dim(db, matcher, dim, items, gallery.get(dim, {}), changed, updates, stats)
            for dim in [d for d in self._states if d not in by_dim]:
                del self._states[dim]
            if updates:
                with db.tx() as c:
                    c.executemany("UPDATE faces SET suggested_person_id=?, suggested_distance=?,"
                                  " suggested_confidence=? WHERE id=? AND confirmed_person_id IS NULL", updates)
            self.last_stats = stats
            return changed

    def _update_dim(self, db, matcher, dim: int, items: List[Tuple], entries: Dict[int, List[Tuple]],
                    changed: Dict[int, int], updates: List[Tuple], stats: Dict[str, int]) -> None:
        cols = list(zip(*items))
        ids = np.array(cols[0], dtype=np.int64)
        rejected = np.array(cols[3], dtype=object)
        stored = list(zip(cols[4], cols[5], cols[6]))
        stored_a = np.array(cols[4:7], dtype=np.float64).T   # None -> NaN
        keys = sorted(entries)
        sigs = {k: tuple(entries[k]) for k in keys}   # (kind, id, embedding bytes) of each entry
        galleries = {k: np.frombuffer(b"".join(b for *_x, b in entries[k]), dtype=np.float32).reshape(-1, dim)
                     for k in keys}
        old = self._states.get(dim)
        # rows: the ones kept from last time, and the new ones
        if old is not None and len(old.ids):
            at = np.minimum(np.searchsorted(old.ids, ids), len(old.ids) - 1)
            kept = old.ids[at] == ids
        else:
            at, kept = np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        new = np.flatnonzero(~kept)
        E = np.empty((len(ids), dim), dtype=np.float64)
        if len(new):
            E[new] = self._embeddings(db, ids[new], dim)
        if kept.any():
            E[kept] = old.E[at[kept]]
        # columns: unchanged people keep theirs (for the kept rows)
        D = np.empty((len(ids), len(keys)))
        same_cols = [j for j, k in enumerate(keys) if old is not None and old.sigs.get(k) == sigs[k]]
        redo_cols = [j for j in range(len(keys)) if j not in set(same_cols)]
        if kept.any() and same_cols:
            old_col = {k: j for j, k in enumerate(old.keys)}
            D[np.ix_(np.flatnonzero(kept), same_cols)] = old.D[np.ix_(at[kept], [old_col[keys[j]] for j in same_cols])]
        if kept.any() and redo_cols:
            D[np.ix_(np.flatnonzero(kept), redo_cols)] = _distances(matcher, E[kept],
                                                                    {keys[j]: galleries[keys[j]] for j in redo_cols})
        if len(new) and keys:
            D[new] = _distances(matcher, E[new], {k: galleries[k] for k in keys})
        excluded = _excluded(rejected)
        # which faces the rule must look at again
        look = ~kept
        if kept.any():
            ki = np.flatnonzero(kept)
            was = old.belief[at[ki]]
            now = stored_a[ki]
            look[ki] |= (rejected[ki] != old.rejected[at[ki]]) | \
                ~((now == was) | (np.isnan(now) & np.isnan(was))).all(axis=1)
            if old.keys != keys:
                look[ki] = True
            elif redo_cols:
                ex_k = [excluded[i] for i in ki]
                before = _masked(old.D[at[ki]], keys, ex_k)
                after = _masked(D[ki], keys, ex_k)
                if len(keys) < 3:
                    look[ki] = True
                else:
                    top2 = np.argpartition(before, 1, axis=1)[:, :2]
                    second = np.take_along_axis(before, top2, axis=1).max(axis=1)
                    for j in redo_cols:
                        look[ki] |= (top2 == j).any(axis=1) | (after[:, j] <= second)
        rows = np.flatnonzero(look)
        belief = stored_a.copy()   # rows not looked at hold what the cache left there (checked above)
        if len(rows):
            matches = rule_on(matcher, keys, D[rows], [excluded[i] for i in rows])
            for i, m in zip(rows, matches):
                shown, row = compare(stored[i], m)
                if shown:
                    photo = items[i][1]
                    changed[photo] = changed.get(photo, 0) + 1
                if row is not None:
                    updates.append(row + (int(ids[i]),))
                    belief[i] = [np.nan if v is None else v for v in row]
        self._states[dim] = _State(ids, E, keys, sigs, D, rejected, belief)
        stats["rows"] += len(ids)
        stats["new_rows"] += len(new)
        stats["columns"] += len(redo_cols) if kept.any() else len(keys)
        stats["evaluated"] += len(rows)
