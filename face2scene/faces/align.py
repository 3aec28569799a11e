"""Face alignment to the FFHQ template and feathered paste-back (DESIGN.md, "Face alignment")."""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

# FFHQ 512 template: left eye, right eye, nose tip, left mouth corner, right mouth corner.
FFHQ_TEMPLATE_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
     [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float32)
# ArcFace 112 template, same order.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)

# Inner-face region in template coordinates (eyes, nose, mouth, cheeks): used where only the
# face itself (not hair or background) should count.
INNER_FACE_ELLIPSE_512 = ((256.0, 300.0), (118.0, 150.0))


def template(size: int) -> np.ndarray:
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def estimate_affine(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Similarity transform (2x3) mapping input landmarks onto the FFHQ template at ``size``."""
    src = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    dst = template(size)[: len(src)]
    affine, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if affine is None:  # degenerate landmarks (all collinear / identical)
        raise ValueError("cannot align face: degenerate landmarks")
    return affine.astype(np.float64)


def affine_scale(affine: np.ndarray) -> float:
    """Isotropic scale of a similarity transform (crop pixels per input pixel)."""
    return float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))


def native_crop_size(landmarks: np.ndarray, upscale: float = 1.0, lo: int = 64, hi: int = 1024) -> int:
    """Crop side at which one crop pixel is about one (upscaled) input pixel."""
    lm = np.asarray(landmarks, dtype=np.float64)
    a = estimate_affine(lm, 512)
    side = 512.0 / affine_scale(a) * upscale
    return int(np.clip(round(side / 8) * 8, lo, hi))


def warp_to_crop(image: np.ndarray, affine: np.ndarray, size: int,
                 interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Warp ``image`` with ``affine`` into a size x size crop; large reductions are pre-filtered
    (area resize) so that a high-resolution reference does not alias."""
    s = affine_scale(affine)
    if s < 0.5:
        f = min(1.0, 2.0 * s)
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, int(round(w * f))), max(1, int(round(h * f)))),
                           interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        pre = np.array([[fx, 0, 0], [0, fy, 0], [0, 0, 1]], dtype=np.float64)
        affine = (np.vstack([affine, [0, 0, 1]]) @ np.linalg.inv(pre))[:2]
        image = small
    return cv2.warpAffine(image, affine, (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_REFLECT101)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 512,
               interpolation: int = cv2.INTER_CUBIC) -> Tuple[np.ndarray, np.ndarray]:
    """Return (aligned crop, 2x3 affine input->crop). Bicubic by default: bilinear resampling
    at sub-pixel shifts blurs by about 0.4 px, which a degradation estimate would read as blur."""
    affine = estimate_affine(landmarks, size)
    return warp_to_crop(image, affine, size, interpolation), affine


def inner_face_mask(size: int) -> np.ndarray:
    """Float mask (size x size) of the inner face ellipse in template coordinates."""
    (cx, cy), (ax, ay) = INNER_FACE_ELLIPSE_512
    k = size / 512.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = ((xx - cx * k) / (ax * k)) ** 2 + ((yy - cy * k) / (ay * k)) ** 2
    return (r <= 1.0).astype(np.float32)


def crop_region_in_image(affine: np.ndarray, size: int, shape: Tuple[int, int],
                         margin: int = 2) -> Tuple[int, int, int, int]:
    """Integer bounding box (x0, y0, x1, y1) in the image covered by the crop, clipped."""
    inv = cv2.invertAffineTransform(affine)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    h, w = shape[:2]
    x0 = int(max(0, np.floor(pts[:, 0].min()) - margin))
    y0 = int(max(0, np.floor(pts[:, 1].min()) - margin))
    x1 = int(min(w, np.ceil(pts[:, 0].max()) + margin))
    y1 = int(min(h, np.ceil(pts[:, 1].max()) + margin))
    return x0, y0, x1, y1


def crop_to_region(crop: np.ndarray, affine: np.ndarray, region: Tuple[int, int, int, int],
                   interpolation: int = cv2.INTER_CUBIC) -> Tuple[np.ndarray, np.ndarray]:
    """Warp an aligned crop back into the image region ``(x0, y0, x1, y1)``.

    Returns (warped crop, coverage mask in 0..1) in region coordinates."""
    x0, y0, x1, y1 = region
    size = crop.shape[0]
    inv = cv2.invertAffineTransform(affine).copy()
    inv[:, 2] -= (x0, y0)
    out_wh = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(crop, inv, out_wh, flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    ones = np.ones((size, size), np.float32)
    mask = cv2.warpAffine(ones, inv, out_wh, flags=cv2.INTER_LINEAR, borderValue=0)
    return warped, mask


def feather_mask(mask: np.ndarray, side: float) -> np.ndarray:
    """Erode a coverage mask and feather its edge by about a twentieth of the face's side."""
    f = max(2, int(round(side / 20.0)))
    k = np.ones((2 * f + 1, 2 * f + 1), np.uint8)
    hard = cv2.erode((mask > 0.5).astype(np.uint8), k)
    soft = cv2.GaussianBlur(hard.astype(np.float32), (0, 0), f / 2.0)
    return np.clip(soft, 0, 1) * (mask > 0.5)


def face_paste_mask(size: int) -> np.ndarray:
    """Where a restored face may replace the photo: the face and forehead, not the hair or the
    background around it (the references' hair and background do not belong to this photo)."""
    k = size / 512.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = ((xx - 256 * k) / (165 * k)) ** 2 + ((yy - 285 * k) / (200 * k)) ** 2
    return (r <= 1.0).astype(np.float32)


def paste_back(image: np.ndarray, crop: np.ndarray, affine: np.ndarray,
               occupied: Optional[np.ndarray] = None, strength: float = 1.0,
               crop_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend ``crop`` (aligned, same transform as ``affine``) into ``image`` in place.

    ``occupied`` (float32 HxW, 0..1) records what earlier faces already covered: a later face
    only fills what is left, so overlapping faces never overwrite each other blindly. Returns
    the image for convenience."""
    size = crop.shape[0]
    region = crop_region_in_image(affine, size, image.shape)
    x0, y0, x1, y1 = region
    if x1 <= x0 or y1 <= y0:
        return image
    warped, cover = crop_to_region(crop, affine, region)
    if crop_mask is not None:
        m, _ = crop_to_region(crop_mask.astype(np.float32), affine, region, cv2.INTER_LINEAR)
        cover = cover * m
    side = size / affine_scale(affine)
    alpha = feather_mask(cover, side) * float(strength)
    if occupied is not None:
        free = 1.0 - occupied[y0:y1, x0:x1]
        alpha = alpha * free
        occupied[y0:y1, x0:x1] = np.maximum(occupied[y0:y1, x0:x1], alpha)
    a = alpha[..., None]
    roi = image[y0:y1, x0:x1].astype(np.float32)
    blended = roi * (1 - a) + warped.astype(np.float32) * a
    image[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(image.dtype)
    return image


def analysis_region(affine: np.ndarray, size: int, shape, max_side: int = 320) -> Tuple[int, int, int, int]:
    """The image region FaDeX compares for one face: the crop's footprint, at most ``max_side``
    pixels square around the inner face (a big face has pixels to spare, and the cost and
    memory of the search grow with the area), its origin on the photo's 8x8 JPEG grid."""
    x0, y0, x1, y1 = crop_region_in_image(affine, size, shape)
    inv = cv2.invertAffineTransform(affine)
    cx, cy = inv @ np.array([size * 0.5, size * 300 / 512, 1.0])  # inner-face centre
    if x1 - x0 > max_side:
        x0 = int(np.clip(cx - max_side / 2, x0, x1 - max_side))
        x1 = x0 + max_side
    if y1 - y0 > max_side:
        y0 = int(np.clip(cy - max_side / 2, y0, y1 - max_side))
        y1 = y0 + max_side
    return x0 - x0 % 8, y0 - y0 % 8, x1, y1
