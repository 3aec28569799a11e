"""The incremental suggestion pass (library/suggest.py) stores what a full recompute would, after
every kind of change the app makes, and after naming one face it recomputes one person's column
and looks again only at the faces that person can matter to."""
from __future__ import annotations

import json

import numpy as np
import pytest

from f2s_desktop.library import Library

from .fakes import face_dict, make_photo


@pytest.fixture
def lib():
    lib = Library()
    yield lib
    lib.close()


def _build(lib, tmp_path, n_photos=8, per_photo=12, n_people=5, seed=0):
    rng = np.random.default_rng(seed)
    folder = tmp_path / "photos"
    for i in range(n_photos):
        make_photo(folder / f"g{i}.png", 10 + i)
    rep = lib.photos.import_files([folder])
    people = [lib.people.add(f"P{k}") for k in range(n_people)]
    truth = {}
    for pid in rep.added:
        who = rng.integers(0, n_people, size=per_photo)
        # jitter near the people's spacing: some faces fall between two people or past the threshold
        lib.faces.store(pid, [face_dict(int(w), box=(10 + 3 * j, 10, 40 + 3 * j, 40), jitter=float(rng.uniform(0.1, 0.5)),
                                        seed=int(rng.integers(1 << 30))) for j, w in enumerate(who)])
        for f, w in zip(lib.faces.for_photo(pid), who):
            truth[f.id] = people[int(w)]
    return rep.added, people, truth, rng


def _stored(lib):
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in lib.db.conn.execute(
        "SELECT id, photo_id, suggested_person_id, suggested_distance, suggested_confidence FROM faces"
        " WHERE confirmed_person_id IS NULL")}


def _full_recompute(lib):
    """What a full recompute stores for every unconfirmed face: the matcher over the whole gallery."""
    rows = lib.db.conn.execute("SELECT id, embedding, rejected FROM faces WHERE confirmed_person_id IS NULL"
                               " AND embedding IS NOT NULL ORDER BY id").fetchall()
    E = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    gallery = lib.faces.gallery().get(E.shape[1], {})
    ms = lib.faces.matcher.match_many(E, gallery, [json.loads(r[2]) for r in rows])
    return {r[0]: (m.person, m.distance, None if m.person is None else m.confidence) for r, m in zip(rows, ms)}


def _check(lib, before, changed):
    """Stored suggestions equal a full recompute's; ``changed`` names exactly the photos whose
    faces' shown suggestion (person, confidence in whole percent) changed since ``before``."""
    after, want = _stored(lib), _full_recompute(lib)
    for fid, (p, d, c) in want.items():
        _photo, sp, sd, sc = after[fid]
        assert sp == p, fid
        assert (sd is None) == (d is None) and (d is None or abs(sd - d) < 1e-4), fid
        assert (sc is None) == (c is None) and (c is None or abs(sc - c) < 1e-4), fid

    def shown(v):
        return None if v is None else (v[1], None if v[3] is None else round(v[3] * 100))
    expect = {}
    for fid, v in after.items():
        if fid in before and shown(before[fid]) != shown(v):
            expect[v[0]] = expect.get(v[0], 0) + 1
    assert changed == expect


def test_incremental_suggestions_match_a_full_recompute_after_every_change(lib, tmp_path):
    photos, people, truth, rng = _build(lib, tmp_path)
    faces = lib.faces
    ids = sorted(truth)
    ref_file = make_photo(tmp_path / "refs" / "r.png", 99)

    def step(op):
        before = _stored(lib)
        op()
        _check(lib, before, faces.changed_suggestions())

    step(lambda: None)                                              # first pass: nobody known
    for fid in ids[:6]:                                             # naming faces one at a time
        step(lambda fid=fid: faces.confirm(fid, truth[fid], update=False))
    assert faces.suggestions.last_stats["new_rows"] == 0 and faces.suggestions.last_stats["columns"] == 1
    step(lambda: faces.confirm(ids[6], people[(people.index(truth[ids[6]]) + 1) % len(people)], update=False))
    step(lambda: faces.confirm(ids[6], truth[ids[6]], update=False))        # changed to another person
    step(lambda: faces.confirm(ids[0], None, update=False))                 # cleared: rejected, unconfirmed again
    step(lambda: faces.confirm(ids[1], None, update=False))

    def add_ref(person, face_person, seed):
        rid = lib.people.add_references(person, [make_photo(tmp_path / "refs" / f"r{seed}.png", 200 + seed)]).added[0]
        lib.people.set_reference_faces(rid, [face_dict(face_person, jitter=0.1, seed=seed),
                                             face_dict((face_person + 1) % len(people), box=(0, 0, 10, 10),
                                                       seed=seed + 1)], update=False)
        return rid
    rids = []
    step(lambda: rids.append(add_ref(people[0], 0, 7)))
    step(lambda: lib.people.choose_reference_face(rids[0], 1, update=False))   # same ref, other embedding
    step(lambda: lib.people.remove_reference(rids[0]))
    assert ref_file.is_file()
    step(lambda: lib.people.merge(people[3], people[4]))
    step(lambda: lib.people.remove(people[2]))
    new_photo = lib.photos.import_files([make_photo(tmp_path / "more" / "n.png", 77)]).added[0]
    step(lambda: faces.store(new_photo, [face_dict(1, jitter=0.2, seed=5), face_dict(0, jitter=0.4, seed=6)]))
    step(lambda: faces.use_backend("euclidean", 0.5))                         # another threshold: all again
    for fid in [int(x) for x in rng.choice(ids[10:], size=8, replace=False)]:
        step(lambda fid=fid: faces.confirm(fid, truth[fid] if truth[fid] in (people[0], people[1]) else people[4],
                                           update=False))
    lib.photos.remove(photos[-1])
    step(lambda: None)                                               # a removed photo's faces leave the matrix


def test_naming_one_face_recomputes_one_column_and_few_rows(lib, tmp_path):
    _photos, people, truth, _rng = _build(lib, tmp_path, n_photos=10, per_photo=20, n_people=8, seed=3)
    faces = lib.faces
    ids = sorted(truth)
    for fid in ids[:16]:
        faces.confirm(fid, truth[fid], update=False)
    faces.changed_suggestions()
    writes = lib.db.conn.total_changes
    assert faces.changed_suggestions() == {} and lib.db.conn.total_changes == writes   # nothing changed
    assert faces.suggestions.last_stats["evaluated"] == 0 and faces.suggestions.last_stats["columns"] == 0
    faces.confirm(ids[20], truth[ids[20]], update=False)
    faces.changed_suggestions()
    st = faces.suggestions.last_stats
    assert st["columns"] == 1 and st["new_rows"] == 0
    assert 0 < st["evaluated"] < st["rows"] // 2, st   # only the faces the named person is near


def test_someone_else_writing_a_suggestion_is_noticed(lib, tmp_path):
    """A row changed behind the cache's back (another writer) is looked at again and corrected."""
    _photos, people, truth, _rng = _build(lib, tmp_path, n_photos=3, per_photo=8)
    faces = lib.faces
    ids = sorted(truth)
    for fid in ids[:8]:
        faces.confirm(fid, truth[fid], update=False)
    faces.changed_suggestions()
    victim = ids[10]
    lib.db.conn.execute("UPDATE faces SET suggested_person_id=?, suggested_confidence=0.99 WHERE id=?",
                        (people[0] if truth[victim] != people[0] else people[1], victim))
    before = _stored(lib)
    _check(lib, before, faces.changed_suggestions())
