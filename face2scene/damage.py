"""Damage of old prints: detection of scratches and specks as a mask, and their repair.

Classical detectors on the luma (no learned weights):

* **Thin lines** (scratches, hairs, cracks of creases; bright or dark, 1-4 px wide, straight or
  gently curved): the morphological top-hat with a disc wider than the line isolates thin
  structures of one polarity; averaging it along short segments at ``n_angles`` orientations
  gives each pixel's line response, and a line is where the best orientation stands out from
  the average over orientations (texture and specks respond to every orientation alike).
* **Specks** (dust): small components of the top-hat (area and contrast limits) whose contrast
  is well above the texture and noise around them.

Both are robust to texture and edges: thresholds scale with the local mean top-hat (texture,
grain) and the photo's noise, and a candidate is rejected where a blurred copy of the photo has
a strong edge nearby (sharpening halos, JPEG ringing and thin bright rims along real edges are
long straight lines too, but they sit on an edge that survives the blur; a 1-4 px scratch does
not survive it). ``protect`` excludes regions (for instance the eyes, whose catchlights are
specks) from detection.

**The learned second stage** (:class:`face2scene.models.damage_seg.DamageSegNet`, weights shipped in
``face2scene/weights/damage_seg``, trained by ``face2scene train damage`` on the degradation model
of old prints): the rules also pass thin *real* lines (ropes, chains, lanyards, rail edges) and
small round highlights (buttons, beads). A tiny U-Net sees the photo around each candidate
(luma, chroma, top-hats, the rules' candidate maps) and gives each pixel a damage probability; a
scratch or speck of the rules is kept only where its mean probability reaches
:data:`SEG_GATE`. Without the weights the rules alone decide (with a warning).

**On a photo called a damaged print** (many sure specks): a looser line rule
(:data:`LINE_RULES_DAMAGED`: curved lines measured along their skeleton -- hairs, bent scratches,
cracks --, shorter lines, a parallel neighbour on one side), not gated by the network (it gives
hairs and bent scratches low probabilities), and the strict rule's lines gated only at
``SEG_GATE["damaged_scratch"]`` (the network doubts dark scratches). **Long lines** (from 80 px)
need a line score of 0.8, not 1.0 (a wide or high-contrast line's soft rim lowers its median
score); on a photo not called a damaged print those extra lines are gated at
``SEG_GATE["near_scratch"]``. **Specks of the scene**: four or more alike specks
evenly in a row (buttons, beads; :data:`SCENE_ROW`) are not dust.

:func:`repair` fills a mask, grown by :data:`REPAIR_GROW` px over the defects' soft rims, by
OpenCV's inpainting (Telea or Navier-Stokes) — for thin scratches and specks; it is not meant
for large holes.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = ["DamageMask", "detect_damage", "repair", "line_kernels", "eyes_protect_mask", "apply_user_edits",
           "EDIT_ADD", "EDIT_ERASE", "seg_inputs", "load_seg_net", "seg_probability", "SEG_WEIGHTS_DIR", "SEG_GATE",
           "worth_repairing", "SPARSE_DAMAGE", "REPAIR_GROW", "LINE_RULES_DAMAGED", "SCENE_ROW"]


@dataclass
class DamageMask:
    """The damage found in a photo (boolean HxW masks) and how it was found."""

    mask: np.ndarray  # union of the classes
    scratches: np.ndarray  # thin lines (scratches, hairs, cracks)
    specks: np.ndarray  # small blobs (dust)
    info: Dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    def label_map(self) -> np.ndarray:
        """uint8: 0 none, 1 scratch, 2 speck (the labels of ``degrade.defect_label_map``)."""
        out = np.zeros(self.mask.shape, np.uint8)
        out[self.scratches] = 1
        out[self.specks & ~self.scratches] = 2
        return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float32)
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _disc(d: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


_KERNELS: Dict[Tuple[int, int], list] = {}


def line_kernels(length: int, n_angles: int) -> list:
    """Normalised anti-aliased line segments of ``length`` px at ``n_angles`` orientations."""
    key = (length, n_angles)
    if key not in _KERNELS:
        ks = []
        c = (length - 1) / 2.0
        for i in range(n_angles):
            a = math.pi * i / n_angles
            k = np.zeros((length, length), np.float32)
            dx, dy = math.cos(a) * c, math.sin(a) * c
            p0 = (int(round((c - dx) * 16)), int(round((c - dy) * 16)))
            p1 = (int(round((c + dx) * 16)), int(round((c + dy) * 16)))
            cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA, shift=4)
            ks.append(k / k.sum())
        _KERNELS[key] = ks
    return _KERNELS[key]


def noise_sigma(lum: np.ndarray) -> float:
    """Robust noise std (levels) from the finest scale: MAD of a 3x3 Laplacian-like residual
    (Immerkaer's operator), over the flatter half of the photo."""
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(lum, -1, k, borderType=cv2.BORDER_REFLECT101)[2:-2, 2:-2]
    g = np.abs(cv2.Sobel(cv2.GaussianBlur(lum, (0, 0), 1.0), cv2.CV_32F, 1, 0)[2:-2, 2:-2]) + \
        np.abs(cv2.Sobel(cv2.GaussianBlur(lum, (0, 0), 1.0), cv2.CV_32F, 0, 1)[2:-2, 2:-2])
    flat = g <= np.median(g)
    v = np.abs(r[flat]) if flat.any() else np.abs(r.ravel())
    return float(np.median(v) * 1.4826 / 6.0) if v.size else 0.0


def _line_response(th: np.ndarray, length: int, n_angles: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best orientation's mean top-hat along a segment, the response at right angles to it,
    index of the best orientation)."""
    rs = np.stack([cv2.filter2D(th, -1, k, borderType=cv2.BORDER_REFLECT101)
                   for k in line_kernels(length, n_angles)])
    arg = np.argmax(rs, axis=0)
    best = np.take_along_axis(rs, arg[None], 0)[0]
    orth = np.take_along_axis(rs, ((arg + n_angles // 2) % n_angles)[None], 0)[0]
    return best, orth, arg.astype(np.uint8)


def _local_median(x: np.ndarray, ksize: int, scale: float = 4.0) -> np.ndarray:
    """Local median of a non-negative map (levels; quarter-level precision up to 63.75)."""
    q = np.clip(x * scale, 0, 255).astype(np.uint8)
    return cv2.medianBlur(q, ksize).astype(np.float32) / scale


def _components(mask: np.ndarray):
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return n, lab, stats


def _shape(ys: np.ndarray, xs: np.ndarray) -> Tuple[float, float]:
    """(length of the major axis, of the minor axis) of a set of pixels (2 std each side)."""
    if len(xs) < 3:
        return float(len(xs)), 1.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    ev = np.sqrt(np.maximum(np.linalg.eigvalsh(cov), 0))
    return float(4 * ev[1] + 1), float(4 * ev[0] + 1)


def _orientation_coherence(cand: np.ndarray, arg: np.ndarray, n_angles: int, window: int = 9) -> np.ndarray:
    """Per pixel of ``cand``: the length of the mean doubled-angle vector of the best line
    orientations (``arg``) of the candidate pixels within ``window`` px (1: all agree, as along a
    straight or smoothly curved line; grain and texture blobs point every way)."""
    ang = (2.0 * math.pi / n_angles) * arg.astype(np.float32)
    m = cand.astype(np.float32)
    k = (window, window)
    c = cv2.boxFilter(np.cos(ang) * m, -1, k, normalize=False)
    s = cv2.boxFilter(np.sin(ang) * m, -1, k, normalize=False)
    n = cv2.boxFilter(m, -1, k, normalize=False)
    return np.sqrt(c * c + s * s) / np.maximum(n, 1.0)


def _line_features(cand: np.ndarray, arg: np.ndarray, n_angles: int, score: np.ndarray,
                   contrast: np.ndarray, chroma: Optional[np.ndarray], min_len: int,
                   parallel: Tuple[int, int] = (4, 24), lum: Optional[np.ndarray] = None):
    """Label the components of ``cand`` and measure each line-like one: length, width, the share
    of its pixels within one orientation step of the dominant one, its median ``score`` (line
    response over the local threshold) and ``contrast`` (levels), the largest share of its
    length that has another candidate line parallel to it ``parallel`` px away, and whether its
    colour is its own (:func:`_neutral`), and ``asym``: how much the photo differs between the
    two sides of the line (5 px away) relative to the line's contrast (a scratch crosses the
    scene and has the same scene on both sides; a rim, a rail or a halo lies along an edge)."""
    from skimage.morphology import skeletonize
    n, lab, stats = _components(cand)
    H, W = cand.shape
    feats = {}
    coherence = _orientation_coherence(cand, arg, n_angles) if n > 1 else None
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_len // 2 or max(w, h) < min_len * 0.7:
            continue
        sub = lab[y:y + h, x:x + w] == i
        ys, xs = np.nonzero(sub)
        major, minor = _shape(ys, xs)
        if major < min_len * 0.7:
            continue
        a = arg[y:y + h, x:x + w][sub].astype(np.int32)
        hist = np.bincount(a, minlength=n_angles)
        dom = int(np.argmax(hist))
        straight = (hist[dom] + hist[(dom - 1) % n_angles] + hist[(dom + 1) % n_angles]) / len(a)
        ang = math.pi * dom / n_angles
        nx, ny = -math.sin(ang), math.cos(ang)
        ys, xs = ys + y, xs + x
        side = {-1: 0.0, 1: 0.0}
        for dist in range(parallel[0], parallel[1] + 1, 2):
            for sgn in (-1, 1):
                qx = np.clip(np.rint(xs + sgn * dist * nx).astype(int), 0, W - 1)
                qy = np.clip(np.rint(ys + sgn * dist * ny).astype(int), 0, H - 1)
                side[sgn] = max(side[sgn], float((cand[qy, qx] & (lab[qy, qx] != i)).mean()))
        con = float(np.median(contrast[ys, xs]))
        asym = 0.0
        if lum is not None:  # a scratch has the same scene on both sides; a rim or rail lies on an edge
            d = 5
            ax = np.clip(np.rint(xs + d * nx).astype(int), 0, W - 1)
            ay = np.clip(np.rint(ys + d * ny).astype(int), 0, H - 1)
            bx = np.clip(np.rint(xs - d * nx).astype(int), 0, W - 1)
            by = np.clip(np.rint(ys - d * ny).astype(int), 0, H - 1)
            asym = float(np.median(np.abs(lum[ay, ax] - lum[by, bx]))) / max(con, 1.0)
        # a curved line: its skeleton's length and how well its orientation agrees with that of
        # its neighbours along it (a smooth curve: near 1; grain and texture: lower)
        skel = int(skeletonize(sub).sum())
        coh = float(np.median(coherence[ys, xs])) if coherence is not None else 0.0
        feats[i] = dict(length=major, width=area / max(major, 1.0), minor=minor, straight=float(straight),
                        skel_len=float(skel), skel_width=area / max(skel, 1.0), coherence=coh,
                        score=float(np.median(score[ys, xs])), contrast=con,
                        parallel=max(side.values()), parallel_both=min(side.values()), asym=asym)
    if chroma is not None and feats:
        own = _neutral(np.isin(lab, list(feats)), chroma)
        labs_kept = set(np.unique(lab[own]).tolist())
        for i in feats:
            feats[i]["own_colour"] = i not in labs_kept
    return lab, feats


LOOSE = 0.6  # line candidates: this share of the threshold (the rules then decide)

#: Line components kept as scratches (see :func:`_line_features`); ``score`` and ``contrast``
#: thresholds are divided by the sensitivity.
LINE_RULES = dict(min_len=50, max_width=6.5, straight=0.8, parallel=0.2, score=1.0, contrast=0.0, asym=0.6)


#: On a photo called a damaged print (many sure specks, see SURE_SPECKS_PER_MP) the line rule is
#: looser: shorter lines, curved ones (measured along their skeleton: a hair, a bent scratch, a
#: crack), and a line with another one parallel to it on one side (two scratches side by side).
#: Chosen on the tuning set of scripts/oldprint_detect_eval.py (docs/oldprints/README.md); a
#: photo without that evidence -- every clean photo measured -- keeps LINE_RULES.
LINE_RULES_DAMAGED = dict(min_len=35, max_width=6.5, straight=0.5, parallel=0.35, score=1.0, contrast=0.0,
                          asym=0.6, curved=True, long_len=80, long_score=0.8)

#: A line at least ``long_len`` px long needs only ``long_score`` (in the rules that have them):
#: the median line score of a wide or high-contrast scratch is lowered by its soft rims (the local
#: threshold grows with the line's own response), so long, plainly visible scratches and creases
#: scored 0.8-1.0 and were missed (scripts/oldprint_bench.py's larger set, ``--per-person 0
#: --scenes 3 --seed 23``: 0.97 for a 150 px dark scratch). Short lines keep ``score``: at 0.8 for
#: every length the texture lines found on the damaged tuning prints cut the scratch IoU to 0.49.
#: On a photo not called a damaged print such lines (not already kept by LINE_RULES) are gated
#: by the network at SEG_GATE["near_scratch"], stricter than the strict rule's lines.
NEAR_LINE_RULES = dict(LINE_RULES, long_len=80, long_score=0.8)


def _is_scratch(f: Dict[str, float], k: float, rules=LINE_RULES) -> bool:
    length, elongated, straight = f["length"], f["length"] >= 5 * f["minor"], f["straight"] >= rules["straight"]
    if rules.get("curved") and "skel_len" in f:
        # a smooth curve: long and thin along its skeleton, its orientation coherent along it
        curve = f["skel_len"] >= 5 * f["skel_width"] and f["skel_width"] <= rules["max_width"] and f["coherence"] >= 0.9
        length = max(length, f["skel_len"])
        elongated, straight = elongated or curve, straight or curve
    return (length >= rules["min_len"] and f["width"] <= rules["max_width"]
            and elongated and straight
            and f["parallel"] < rules["parallel"]
            and f["score"] >= k * (rules["long_score"] if length >= rules.get("long_len", math.inf) else rules["score"])
            and f["contrast"] >= k * rules["contrast"] and f.get("asym", 0.0) < rules["asym"]
            and not f.get("own_colour", False))


def _speck_features(cand: np.ndarray, th: np.ndarray, thr: np.ndarray, max_area: int, max_side: int,
                    ring: int = 8, exclude: Optional[np.ndarray] = None):
    """Label the components of ``cand`` and measure the small ones: area, peak top-hat
    (``peak``, levels), peak over the local threshold (``score``) and over the top-hat around it
    (its maximum 3 to ``ring`` px away; ``isolation``: dust is isolated, texture repeats)."""
    n, lab, stats = _components(cand)
    h, w = th.shape
    feats = {}
    small = (stats[:, cv2.CC_STAT_AREA] <= max_area) & (np.maximum(stats[:, 2], stats[:, 3]) <= max_side)
    small[0] = False
    peaks = np.zeros(n, np.float32)
    if n > 1:
        import scipy.ndimage as ndi
        peaks[1:] = ndi.maximum(th, lab, np.arange(1, n))
    small_px = small[lab]
    small_zone = cv2.dilate(small_px.astype(np.uint8), _disc(2 * SPECK_HALO + 1)) > 0
    if exclude is not None:
        small_zone |= exclude
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        area = int(stats[i, cv2.CC_STAT_AREA])
        if not small[i]:
            continue
        x0, y0 = max(0, x - ring), max(0, y - ring)
        x1, y1 = min(w, x + bw + ring), min(h, y + bh + ring)
        own = lab[y0:y1, x0:x1] == i
        sub_th = th[y0:y1, x0:x1]
        peak = float(sub_th[own].max())
        near = cv2.dilate(own.astype(np.uint8), _disc(2 * SPECK_HALO + 1)) > 0
        others = sub_th[~near]
        feats[i] = dict(area=area, peak=peak, score=peak / float(thr[y0:y1, x0:x1][own].max()),
                        isolation=peak / max(float(others.max()) if others.size else 0.0, 1.0))
        # the same, with the other small blobs around counted by their peaks (and detected lines
        # left out): a second speck or a scratch next to this one is not texture; a third is
        bg = sub_th[~near & ~small_zone[y0:y1, x0:x1]]
        labs = np.unique(lab[y0:y1, x0:x1][~near])
        op = np.sort(peaks[labs[(labs != i) & small[labs]]])[::-1]
        ref = max(float(bg.max()) if bg.size else 0.0, float(op[1]) if len(op) > 1 else 0.0)
        feats[i]["iso2"] = peak / max(ref, 1.0)
    return lab, feats


#: Speck components kept as dust; ``score`` is divided by the sensitivity. ``isolation``: the
#: peak over the top-hat around it; ``iso2``: the same with one neighbouring blob allowed (a
#: pair of specks, or a speck by a scratch). SPECK_RULES on any photo, SPECK_RULES_DAMAGED on
#: one with at least SURE_SPECKS_PER_MP SURE_SPECK blobs per megapixel.
SPECK_RULES = dict(score=1.0, isolation=2.5)
SPECK_RULES_DAMAGED = dict(score=1.0, iso2=1.6)
SURE_SPECK = dict(score=2.0, isolation=4.0)
SURE_SPECKS_PER_MP = 30.0
SPECK_HALO = 2  # px around a speck left out of its isolation test (its own blurred rim)


#: Specks of the scene, not dust: a row of ``members`` or more alike blobs (area and peak within
#: these ratios of each other, the same polarity), evenly spaced (``spacing``: the larger gap over
#: the smaller) at most ``dist`` px apart, bending by at most ``angle`` degrees at each -- the
#: buttons of a coat, beads, rivets, a row of lights. Dust falls at random: even on a print with
#: hundreds of alike specks, four of them evenly in a line are rare.
SCENE_ROW = dict(dist=(6.0, 70.0), area=1.6, peak=1.3, angle=10.0, spacing=1.35, members=4)


def _rows_of_alike(lab: np.ndarray, ids: Sequence[int], feats: Dict[int, Dict[str, float]],
                   rule=None) -> set:
    """The ids (of ``lab``) of specks that stand in a row of alike ones (:data:`SCENE_ROW`):
    taken for part of the scene (buttons, beads). A row is grown from triples (a speck with an
    alike one evenly on either side) that share two members."""
    rule = SCENE_ROW if rule is None else rule
    ids = [i for i in ids if i in feats]
    if len(ids) < max(3, rule["members"]):
        return set()
    import scipy.ndimage as ndi
    cen = np.asarray(ndi.center_of_mass(np.ones(lab.shape, np.float32), lab, ids), np.float64)[:, ::-1]  # (x, y)
    area = np.array([feats[i]["area"] for i in ids], np.float64)
    peak = np.array([feats[i]["peak"] for i in ids], np.float64)
    d = np.hypot(cen[:, None, 0] - cen[None, :, 0], cen[:, None, 1] - cen[None, :, 1])
    ra = np.maximum(area[:, None], area[None]) / np.maximum(np.minimum(area[:, None], area[None]), 1.0)
    rp = np.maximum(peak[:, None], peak[None]) / np.maximum(np.minimum(peak[:, None], peak[None]), 1.0)
    alike = (d >= rule["dist"][0]) & (d <= rule["dist"][1]) & (ra <= rule["area"]) & (rp <= rule["peak"])
    cos_tol = math.cos(math.radians(rule["angle"]))
    triples = []
    for a in range(len(ids)):
        nb = np.flatnonzero(alike[a])
        for x in range(len(nb)):
            for y in range(x + 1, len(nb)):
                b, c = nb[x], nb[y]
                u, v = cen[b] - cen[a], cen[c] - cen[a]
                cos = float(u @ v) / max(float(np.linalg.norm(u) * np.linalg.norm(v)), 1e-6)
                if cos <= -cos_tol and max(d[a, b], d[a, c]) <= rule["spacing"] * min(d[a, b], d[a, c]):
                    triples.append(frozenset((a, b, c)))
    # rows: triples joined when they share two specks (b-a-c and a-c-d are one row b-a-c-d)
    parent = list(range(len(triples)))

    def root(t):
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t
    for t in range(len(triples)):
        for u in range(t + 1, len(triples)):
            if len(triples[t] & triples[u]) >= 2:
                parent[root(u)] = root(t)
    rows: Dict[int, set] = {}
    for t, tr in enumerate(triples):
        rows.setdefault(root(t), set()).update(tr)
    return {ids[m] for row in rows.values() if len(row) >= rule["members"] for m in row}


def _is_speck(f: Dict[str, float], k: float, rules=SPECK_RULES) -> bool:
    return (f["score"] >= k * rules["score"] and f["isolation"] >= rules.get("isolation", 0.0)
            and f["iso2"] >= rules.get("iso2", 0.0))


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """HxWx2 float32 chroma (BT.601 Cb, Cr around 0, levels)."""
    x = rgb.astype(np.float32)
    cb = -0.168736 * x[..., 0] - 0.331264 * x[..., 1] + 0.5 * x[..., 2]
    cr = 0.5 * x[..., 0] - 0.418688 * x[..., 1] - 0.081312 * x[..., 2]
    return np.stack([cb, cr], -1)


def _neutral(mask: np.ndarray, chroma: Optional[np.ndarray], min_bg: float = 6.0) -> np.ndarray:
    """Drop the components of ``mask`` that have a colour of their own: damage on a print
    (exposed paper base, dirt) is grey, so it can only pull the photo's colour towards grey
    (and after JPEG's chroma subsampling a thin defect mostly shows the colour around it);
    a thin line of the scene (lips, a coloured wire) can be more saturated than its
    surroundings or of another hue. Components on a nearly grey background are kept."""
    if chroma is None or not mask.any():
        return mask
    n, lab, stats = _components(mask)
    h, w = mask.shape
    keep = np.ones(n, bool)
    keep[0] = False
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        x0, y0, x1, y1 = max(0, x - 5), max(0, y - 5), min(w, x + bw + 5), min(h, y + bh + 5)
        own = lab[y0:y1, x0:x1] == i
        ring = (cv2.dilate(own.astype(np.uint8), _disc(9)) > 0) & ~(cv2.dilate(own.astype(np.uint8), _disc(3)) > 0)
        ring &= lab[y0:y1, x0:x1] == 0
        if ring.sum() < 4:
            continue
        c = chroma[y0:y1, x0:x1]
        bg = np.median(c[ring], axis=0)
        nb = float(np.hypot(*bg))
        line = np.median(c[own], axis=0)
        if nb < min_bg:
            keep[i] = float(np.hypot(*line)) < 2 * min_bg
            continue
        # the part of the line's colour along the background's: a grey overlay of opacity a
        # leaves (1 - a) of it and adds nothing across it
        along = float(line @ bg) / nb
        across = abs(float(line[0] * bg[1] - line[1] * bg[0])) / nb
        keep[i] = along <= 1.1 * nb + 2.0 and across <= max(6.0, 0.5 * nb)
    return keep[lab]


def detect_damage(rgb: np.ndarray, protect: Optional[np.ndarray] = None, *, sensitivity: float = 1.0,
                  line_length: int = 21, n_angles: int = 16, max_width: int = 4,
                  max_speck_area: int = 64, min_line_length: int = 30,
                  learned: Union[bool, str] = "auto", seg_folder: Optional[Union[str, Path]] = None,
                  debug: Optional[dict] = None) -> DamageMask:
    """Find scratches and specks (HxWx3 uint8 RGB or HxW grey); ``protect`` (HxW, true = keep)
    excludes regions. ``sensitivity`` > 1 lowers the thresholds. Widths and sizes are in the
    photo's pixels (for a photo that is not at scan resolution, scale ``max_width`` and
    ``max_speck_area``).

    ``learned``: ``"auto"`` (default) runs the learned second stage when its weights are there
    (``seg_folder``, default :data:`SEG_WEIGHTS_DIR`) and warns once when they are not; ``True``
    requires them (FileNotFoundError); ``False`` keeps the classical rules alone. ``debug`` (a
    dict) receives the rules' intermediate maps and, with the learned stage, ``"seg_prob"``."""
    if learned not in (True, False, "auto"):
        raise ValueError(f"learned must be True, False or 'auto', got {learned!r}")
    lum = _luma(rgb) if rgb.ndim == 3 else rgb.astype(np.float32)
    chroma = _chroma(rgb) if rgb.ndim == 3 else None
    h, w = lum.shape
    sn = noise_sigma(lum)
    d = 2 * max_width + 1
    se = _disc(d)
    tops = {"bright": lum - cv2.morphologyEx(lum, cv2.MORPH_OPEN, se),
            "dark": cv2.morphologyEx(lum, cv2.MORPH_CLOSE, se) - lum}
    # Structure that survives a blur (edges): a thin line of contrast c and width <= 4 px keeps
    # a gradient of at most ~0.1 c at sigma 3, an edge of contrast E keeps 0.13 E.
    blur = cv2.GaussianBlur(lum, (0, 0), 3.0)
    gb = cv2.magnitude(cv2.Sobel(blur, cv2.CV_32F, 1, 0, ksize=3) / 8, cv2.Sobel(blur, cv2.CV_32F, 0, 1, ksize=3) / 8)
    gb = cv2.dilate(gb, _disc(5))
    k = 1.0 / max(sensitivity, 1e-3)
    border = np.zeros((h, w), bool)
    border[:3, :] = border[-3:, :] = True
    border[:, :3] = border[:, -3:] = True
    floor = np.float32(max(10.0, 4.0 * sn))
    scr = np.zeros((h, w), bool)
    spk = np.zeros((h, w), bool)
    line_cand = np.zeros((h, w), bool)
    speck_cands, line_cands = [], []
    for pol, th in tops.items():
        tex = _local_median(th, 21)  # texture and grain, robust to the defects themselves
        # --- thin lines
        best, orth, arg = _line_response(th, line_length, n_angles)
        s = best - orth
        thr = np.maximum(np.maximum(floor, 3.0 * tex), 3.0 * _local_median(s, 21))
        cand = (s > LOOSE * k * thr) & (th > 0.5 * best) & (4.0 * gb < best) & ~border
        line_cand |= cand
        lab, feats = _line_features(cand, arg, n_angles, s / thr, best, chroma, min_line_length, lum=lum)
        if debug is not None:
            debug.setdefault("lines", []).append((pol, lab, feats))
        keep = np.zeros(lab.max() + 1, bool)
        for i, f in feats.items():
            keep[i] = _is_scratch(f, k)
        lines = keep[lab]
        scr |= lines
        line_cands.append((lab, feats, keep))
        # --- specks: small isolated blobs well above the texture and noise around them
        cthr = np.maximum(np.float32(max(18.0, 6.0 * sn)), 6.0 * tex)
        cand = (th > 0.5 * k * cthr) & (4.0 * gb < th) & ~border
        lab, feats = _speck_features(cand, th, cthr, max_speck_area, 2 * d, exclude=lines)
        if debug is not None:
            debug.setdefault("specks", []).append((pol, lab, feats))
        speck_cands.append((lab, feats, lines))
    # A photo with many sure specks is a damaged print: there the looser rule finds the specks
    # that sit next to texture, another speck or a scratch; a photo without that evidence (a
    # clean photo in the user's folder) keeps the strict rule, which flags almost nothing.
    sure = sum(_is_speck(f, k, SURE_SPECK) for _, feats, _ in speck_cands for f in feats.values())
    damaged = sure >= SURE_SPECKS_PER_MP * h * w / 1e6
    loose = np.zeros((h, w), bool)  # lines kept only by the damaged-print rule
    near = np.zeros((h, w), bool)  # a photo not called damaged: lines just under the line score
    if not damaged and SEG_GATE["near_scratch"] is not None:
        for lab, feats, strict in line_cands:
            keep = np.zeros(lab.max() + 1, bool)
            for i, f in feats.items():
                keep[i] = not strict[i] and _is_scratch(f, k, NEAR_LINE_RULES)
            near |= keep[lab]
    if damaged:
        for lab, feats, strict in line_cands:
            keep = np.zeros(lab.max() + 1, bool)
            for i, f in feats.items():
                keep[i] = not strict[i] and _is_scratch(f, k, LINE_RULES_DAMAGED)
            loose |= keep[lab]
    scene_specks = 0
    for lab, feats, lines in speck_cands:
        keep = np.zeros(lab.max() + 1, bool)
        for i, f in feats.items():
            keep[i] = _is_speck(f, k, SPECK_RULES_DAMAGED if damaged else SPECK_RULES)
        row = _rows_of_alike(lab, np.flatnonzero(keep).tolist(), feats)
        keep[list(row)] = False
        scene_specks += len(row)
        spk |= keep[lab] & ~lines & ~loose
    info = {"noise_sigma": sn, "sure_specks": int(sure), "damaged_print": bool(damaged), "scene_specks": scene_specks}
    if debug is not None:
        debug.update(tophat_bright=tops["bright"], tophat_dark=tops["dark"], line_candidates=line_cand,
                     classical_scratches=scr.copy(), classical_specks=spk.copy(), loose_scratches=loose.copy())
    judged = np.zeros((h, w), bool)  # what the learned stage decides on (its gated classes)
    scratch_gate = SEG_GATE["damaged_scratch" if damaged else "scratch"]
    if scratch_gate is not None:
        judged |= scr
    if SEG_GATE["loose_scratch"] is not None:
        judged |= loose
    if near.any():
        judged |= near
    if SEG_GATE["speck"] is not None:
        judged |= spk
    if learned is not False and judged.any():
        net = load_seg_net(seg_folder, required=learned is True)
        if net is not None:
            x = seg_inputs(lum, chroma, tops["bright"], tops["dark"], scr, spk, line_cand)
            prob = seg_probability(net, x, judged)
            if debug is not None:
                debug["seg_prob"] = prob
            n_before = (int(_components(scr)[0]) - 1, int(_components(spk)[0]) - 1)
            if scratch_gate is not None:
                scr = _gate(scr, prob, scratch_gate, SEG_GATE_STAT["scratch"])
            if near.any():
                scr |= _gate(near, prob, SEG_GATE["near_scratch"], SEG_GATE_STAT["scratch"])
            if SEG_GATE["loose_scratch"] is not None:
                loose = _gate(loose, prob, SEG_GATE["loose_scratch"], SEG_GATE_STAT["scratch"])
            if SEG_GATE["speck"] is not None:
                spk = _gate(spk, prob, SEG_GATE["speck"], SEG_GATE_STAT["speck"])
            info.update(learned=True, seg_scratches_dropped=n_before[0] - (int(_components(scr)[0]) - 1),
                        seg_specks_dropped=n_before[1] - (int(_components(spk)[0]) - 1))
        else:
            info["learned"] = False
    else:
        info["learned"] = False  # not asked for, or nothing for it to judge
    info["loose_scratch_fraction"] = float(loose.mean())
    scr |= loose
    if protect is not None:
        keep_out = protect.astype(bool)
        scr &= ~keep_out
        spk &= ~keep_out
    info.update(scratch_fraction=float(scr.mean()), speck_fraction=float(spk.mean()))
    return DamageMask(mask=scr | spk, scratches=scr, specks=spk, info=info)


# --- the learned second stage -------------------------------------------------------------------

#: The shipped weights of the learned stage (``config.json`` + ``model.safetensors``).
SEG_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "damage_seg"
#: A component of the rules is kept when the network's damage probability over it reaches this
#: (chosen on the tuning set of ``scripts/oldprint_detect_eval.py``, see docs/oldprints); which
#: statistic of the component's probabilities is compared is in SEG_GATE_STAT; None: not gated.
#: Specks are not gated: at every speck gate measured (0.01-0.5) the network cost too much
#: speck recall on the synthetic prints (old_colour_print 0.85 -> 0.73 at 0.05).
#: ``near_scratch``: a photo not called a damaged print, the long lines kept only by
#: NEAR_LINE_RULES. At 0.5 a held-out clean cloister went 0.27 % -> 0.46 % flagged (its arches'
#: lines), just under SPARSE_DAMAGE; at 0.7, 0.38 %, and the bench's synthetic prints keep the
#: crease it finds (probability 0.78).
#: ``damaged_scratch``: the strict rule's lines on a photo called a damaged print, gated only
#: loosely: the network gives the synthetic prints' dark scratches low probabilities (0.1-0.2 on
#: the larger bench set of scripts/oldprint_bench.py, ``--per-person 0 --scenes 3 --seed 23``), and
#: a damaged print has the evidence that its lines are damage; but ungated, the real grainy
#: snapshot called a damaged print (old_photos/gfpgan_00) had a jacket seam and the scan's border
#: filled (probabilities <= 0.001). A photo not called one keeps ``scratch``.
SEG_GATE = {"scratch": 0.3, "near_scratch": 0.7, "damaged_scratch": 0.05, "speck": None, "loose_scratch": None}
SEG_GATE_STAT = {"scratch": "mean", "speck": "max"}
SEG_CHANNELS = 9
_SEG_NETS: Dict[str, object] = {}
_SEG_WARNED = set()


def seg_inputs(lum: np.ndarray, chroma: Optional[np.ndarray], th_bright: np.ndarray, th_dark: np.ndarray,
               scratches: np.ndarray, specks: np.ndarray, line_candidates: np.ndarray) -> np.ndarray:
    """The learned stage's input, SEG_CHANNELS x H x W float32: luma, local contrast, bright and
    dark top-hats, chroma (Cb, Cr; zero for grey), and the rules' scratches, specks and loose line
    candidates. Levels are 0..255 as in :func:`detect_damage`."""
    lum = lum.astype(np.float32)
    h, w = lum.shape
    if chroma is None:
        chroma = np.zeros((h, w, 2), np.float32)
    x = np.empty((SEG_CHANNELS, h, w), np.float32)
    x[0] = lum / 255.0 - 0.5
    x[1] = (lum - cv2.GaussianBlur(lum, (0, 0), 6.0)) / 32.0
    x[2] = np.minimum(th_bright.astype(np.float32), 128.0) / 32.0
    x[3] = np.minimum(th_dark.astype(np.float32), 128.0) / 32.0
    x[4] = chroma[..., 0] / 64.0
    x[5] = chroma[..., 1] / 64.0
    x[6] = scratches
    x[7] = specks
    x[8] = line_candidates
    return x


def load_seg_net(folder: Optional[Union[str, Path]] = None, required: bool = False):
    """The learned stage's network (cached per folder), or None when its weights are missing and
    not ``required`` (a warning says so, once per folder; the rules alone then decide)."""
    folder = Path(folder) if folder is not None else SEG_WEIGHTS_DIR
    key = str(folder)
    if key not in _SEG_NETS:
        from .models.damage_seg import DamageSegNet
        try:
            _SEG_NETS[key] = DamageSegNet.from_folder(folder)
        except FileNotFoundError as e:
            if required:
                raise
            if key not in _SEG_WARNED:
                _SEG_WARNED.add(key)
                warnings.warn(f"{e}; damage detection uses the classical rules alone", RuntimeWarning, stacklevel=3)
            return None
    return _SEG_NETS[key]


def seg_probability(net, x: np.ndarray, where: Optional[np.ndarray] = None, tile: int = 512,
                    margin: int = 48) -> np.ndarray:
    """HxW float32 damage probability of the network on ``x`` (C x H x W, :func:`seg_inputs`),
    in tiles of ``tile`` px with ``margin`` px of context each side; tiles without any ``where``
    pixel are skipped (probability 0 there)."""
    import torch
    c, h, w = x.shape
    m = int(getattr(net, "multiple", 8))
    prob = np.zeros((h, w), np.float32)
    with torch.inference_mode():
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
                if where is not None and not where[y0:y1, x0:x1].any():
                    continue
                a0, b0 = max(0, y0 - margin), max(0, x0 - margin)
                a1, b1 = min(h, y1 + margin), min(w, x1 + margin)
                sub = x[:, a0:a1, b0:b1]
                ph, pw = (-sub.shape[1]) % m, (-sub.shape[2]) % m
                if ph or pw:
                    sub = np.pad(sub, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(sub.shape[1:]) > max(ph, pw) else "edge")
                out = torch.sigmoid(net(torch.from_numpy(np.ascontiguousarray(sub))[None]))[0, 0].numpy()
                prob[y0:y1, x0:x1] = out[y0 - a0:y1 - a0, x0 - b0:x1 - b0]
    return prob


def _gate(mask: np.ndarray, prob: np.ndarray, threshold: float, stat: str = "mean") -> np.ndarray:
    """The components of ``mask`` whose ``stat`` (``mean`` or ``max``) of ``prob`` reaches ``threshold``."""
    if stat not in ("mean", "max"):
        raise ValueError(f"stat must be 'mean' or 'max', got {stat!r}")
    n, lab, _ = _components(mask)
    if n <= 1:
        return mask
    import scipy.ndimage as ndi
    fn = ndi.mean if stat == "mean" else ndi.maximum
    val = np.asarray(fn(prob, lab, np.arange(1, n)), np.float32)
    keep = np.zeros(n, bool)
    keep[1:] = val >= threshold
    return keep[lab]


# Below this share of the photo, on a photo not called a damaged print, detections are no
# more than clean photos get: their false detections are 0.07-0.09 % on average and up to
# 0.42 % (detect_eval*.txt, 37 photos; 0.47 % on one bench photo), mostly thin real lines
# and highlights. Inpainting them cost the near-clean photos of oldprint_bench.py 2.4 dB
# median (5.0 dB worst) of Y-PSNR against the same pipeline without old_print. The synthetic
# prints have 0.7-2.8 %, the real scratched prints of old_photos 0.59-1.35 %; the real prints
# under it (a few specks, a rope, a chain, beads) keep their pixels (the user's brush adds
# what was missed).
SPARSE_DAMAGE = 0.005


def worth_repairing(damage: DamageMask) -> Tuple[bool, str]:
    """Whether to inpaint what :func:`detect_damage` found: not when the evidence is no more
    than a clean photo shows (under :data:`SPARSE_DAMAGE` of the pixels and the photo not
    called a damaged print) -- such detections are mostly thin real lines and highlights, and
    a few real specks are left for the user's brush. Returns (repair, reason)."""
    if not damage.mask.any():
        return False, "no damage found"
    if damage.info.get("damaged_print") or damage.fraction >= SPARSE_DAMAGE:
        return True, ""
    return False, (f"{100 * damage.fraction:.3f} % of the pixels flagged on a photo not called a damaged print "
                   f"(clean photos get about as many false detections): left as it is")


def eyes_protect_mask(landmarks: Sequence[np.ndarray], shape, radius: float = 0.3) -> np.ndarray:
    """Discs around the eyes of faces (5-point FFHQ-order landmarks, input pixels), of
    ``radius`` times the eye distance: catchlights are specks, and must stay."""
    h, w = shape[:2]
    m = np.zeros((h, w), np.uint8)
    for lm in landmarks:
        lm = np.asarray(lm, np.float64).reshape(-1, 2)
        r = max(2, int(round(radius * float(np.linalg.norm(lm[1] - lm[0])))))
        for x, y in lm[:2]:
            cv2.circle(m, (int(round(x)), int(round(y))), r, 1, -1)
    return m > 0


#: px a damage mask is grown by before it is filled: a scratch or speck fades into the photo over
#: a pixel or two (the scan's blur, JPEG), and that rim left unfilled stays a visible halo. Measured
#: on the 6 photos of scripts/oldprint_bench.py (old_print; scripts/oldprint_damage_diag.py): mean
#: |error| in the defects' zone against the photo without its defects 10.4 (1 px), 9.0 (2 px),
#: 9.0 (3 px) levels for the detected masks, 5.8 / 5.0 / 6.1 for the drawn ones.
REPAIR_GROW = 2


def repair(rgb: np.ndarray, mask: np.ndarray, *, grow: int = REPAIR_GROW, method: str = "telea",
           radius: float = 3.0) -> np.ndarray:
    """Fill ``mask`` (HxW bool/uint8; grown by ``grow`` px to cover the defect's soft rim) by
    OpenCV inpainting (``telea`` or ``ns``); returns a new RGB uint8 image. Meant for thin
    scratches and specks; the rest of the photo is returned unchanged."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if grow > 0:
        m = cv2.dilate(m, _disc(2 * grow + 1))
    if not m.any():
        return rgb.copy()
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    out = cv2.inpaint(np.ascontiguousarray(rgb), m * 255, float(radius), flag)
    return out


#: values of a user's edit of the damage mask (HxW int8): pixels the user marks as damage, and
#: pixels the user says are not damage (a rope, a chain, a button taken for a scratch or a speck);
#: 0 leaves the detector's decision
EDIT_ADD, EDIT_ERASE = 1, -1


def check_user_edits(edit: Optional[np.ndarray], shape) -> Optional[np.ndarray]:
    """``edit`` as an HxW int8 array of -1/0/+1 matching the photo's ``shape`` (None stays None);
    a ValueError saying what is wrong otherwise."""
    if edit is None:
        return None
    e = np.asarray(edit)
    h, w = shape[:2]
    if e.ndim != 2 or e.shape != (h, w):
        raise ValueError(f"the damage mask edit is {'x'.join(map(str, e.shape[::-1]))} but the photo is {w}x{h} "
                         "(width x height): it was made for another photo or another size")
    if e.dtype == bool or not np.issubdtype(e.dtype, np.integer):
        raise ValueError(f"the damage mask edit must hold whole numbers (+1 add, -1 erase, 0 auto), got {e.dtype}")
    if e.size and (int(e.min()) < EDIT_ERASE or int(e.max()) > EDIT_ADD):
        raise ValueError("the damage mask edit may only hold +1 (add), -1 (erase) and 0 (auto), "
                         f"got values from {int(e.min())} to {int(e.max())}")
    return e.astype(np.int8, copy=False)


def apply_user_edits(detected: np.ndarray, edit: Optional[np.ndarray]) -> np.ndarray:
    """The damage mask to repair: the ``detected`` one (HxW bool) with the user's ``edit``
    applied — pixels marked :data:`EDIT_ADD` are damage, pixels marked :data:`EDIT_ERASE` are
    not, whatever the detector said. Returns a new boolean array."""
    mask = np.asarray(detected).astype(bool, copy=True)
    e = check_user_edits(edit, mask.shape)
    if e is not None:
        mask[e == EDIT_ERASE] = False
        mask[e == EDIT_ADD] = True
    return mask
