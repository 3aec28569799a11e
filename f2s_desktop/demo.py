"""``f2s-desktop --demo``: the product on its own sample, in a library of its own (never the
user's). Qt-free: :func:`prepare_demo` writes the degraded sample and its person's reference into
the demo library; once the worker has found the photo's faces, :func:`confirm_demo_faces` names
them all as that person and queues the restoration; the window then shows the result in Compare.

The sample is NASA's public-domain portrait of Eileen Collins (shipped by scikit-image). The only
public-domain photo of her we can ship is the sample itself, so the reference is the clean
original mirrored left-right (as in ``face2scene demo``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

PERSON = "Eileen Collins"
PHOTO_NAME = "astronaut_1994_scan.jpg"
REFERENCE_NAME = "eileen_collins_reference.png"


@dataclass
class DemoPlan:
    photo_id: int
    person_id: int


def _write_sample_files(folder: Path) -> tuple:
    """The degraded sample (as a JPEG, like a scan) and the reference; written once."""
    import numpy as np
    from PIL import Image

    from face2scene.degrade import degrade
    from face2scene.samples import load_sample
    folder.mkdir(parents=True, exist_ok=True)
    photo, ref = folder / PHOTO_NAME, folder / "references" / REFERENCE_NAME
    if not (photo.is_file() and ref.is_file()):
        clean = load_sample()
        degraded, _params = degrade(clean, "mild", seed=7)
        Image.fromarray(degraded).save(photo, "JPEG", quality=95)
        ref.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(clean[:, ::-1])).save(ref)
    return photo, ref


def prepare_demo(lib, folder: Optional[Path] = None) -> DemoPlan:
    """Import the sample and add its person with a reference photo (idempotent: a second run
    finds what the first one added)."""
    folder = Path(folder) if folder is not None else lib.paths.data / "demo"
    photo, ref = _write_sample_files(folder)
    rep = lib.photos.import_files([str(photo)])
    photo_id = rep.added[0] if rep.added else rep.duplicates[0][1]
    person = next((p for p in lib.people.all() if p.name == PERSON), None)
    person_id = person.id if person is not None else lib.people.add(PERSON)
    if not lib.people.references(person_id):
        lib.people.add_references(person_id, [str(ref)])
    return DemoPlan(photo_id, person_id)


def confirm_demo_faces(lib, plan: DemoPlan, settings: Dict[str, Any]) -> List[int]:
    """Name every face found in the demo photo as the demo person and queue its restoration (once:
    a photo already restored or queued is left as it is). Returns the queued job ids."""
    for f in lib.faces.for_photo(plan.photo_id):
        if f.confirmed_person_id != plan.person_id:
            lib.faces.confirm(f.id, plan.person_id, update=False)
    p = lib.photos.get(plan.photo_id)
    if p.n_versions or p.status in ("queued", "running"):
        return []
    return lib.queue.enqueue([plan.photo_id], settings)
