"""The one Matcher (face2scene.people) on hand-made embeddings: no dlib, no photos."""
import warnings

import numpy as np

from face2scene.people import Matcher


def _gallery():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=128), rng.normal(size=128)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return {"ann": np.stack([a, a + 0.01]), "bob": np.stack([b, b - 0.01])}, a, b


def test_match_many_finds_each_person_and_says_unknown_beyond_threshold():
    gallery, a, b = _gallery()
    far = -a
    m = Matcher("euclidean", 0.6).match_many(np.stack([a, b, far]), gallery)
    assert [x.person for x in m] == ["ann", "bob", None]
    assert m[0].confidence > 0.9 and m[2].distance > 0.6


def test_a_face_excluded_from_every_person_is_unknown_without_numpy_warnings():
    gallery, a, b = _gallery()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf used to warn "invalid value encountered in subtract"
        m = Matcher("euclidean", 0.6).match_many(np.stack([a, b]), gallery, excluded=[["ann", "bob"], ["bob"]])
    assert m[0].person is None and m[0].distance is None
    assert m[1].person is None  # bob excluded, ann is far: nobody
