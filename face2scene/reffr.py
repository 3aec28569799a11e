"""Ref-FR, embedded: restore a face crop guided by reference photos of the same person.

No learned weights. Structure and colour come from the photo (its low frequencies, where the
degradation left them intact); fine detail comes from the references, aligned to the degraded
face first by the 5-point similarity transform and then by a smooth dense flow computed between
low-pass versions (which absorbs small differences of pose and expression). Several references
are blended per pixel by how well each agrees with the photo after warping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .faces.align import estimate_affine, warp_to_crop

# Agreement (after alignment) below which a reference's detail is not used, and above which it
# is used fully.
AGREE_LO, AGREE_HI = 0.35, 0.65

_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YCC_INV = np.linalg.inv(_YCC).astype(np.float32)


def to_ycc(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _YCC.T


def to_rgb(ycc: np.ndarray) -> np.ndarray:
    return ycc @ _YCC_INV.T


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT101) if sigma > 0.05 else x


def _normalise(y: np.ndarray, sigma: float) -> np.ndarray:
    """Local mean/contrast normalisation (lighting-invariant) to 8-bit for optical flow."""
    m = _gauss(y, sigma)
    s = np.sqrt(np.maximum(_gauss((y - m) ** 2, sigma), 1.0))
    z = (y - m) / s
    return np.clip(z * 40 + 128, 0, 255).astype(np.uint8)


@dataclass
class AlignedReference:
    label: str
    crop: np.ndarray  # RGB float32, aligned to the degraded crop (after dense flow)
    agreement: np.ndarray  # HxW 0..1: how well its low frequencies agree with the photo
    score: float  # mean agreement inside the face


class RefFR:
    """Embedded reference-guided face restoration.

    ``split_sigma`` (crop pixels at the photo's scale) separates structure taken from the photo
    from detail taken from the references; ``photo_detail`` keeps that much of the photo's own
    detail (use > 0 when the photo is only mildly degraded)."""

    name = "embedded-refguided"

    def __init__(self, split_sigma: float = 3.0, flow_sigma: Optional[float] = None) -> None:
        self.split_sigma = split_sigma
        self.flow_sigma = flow_sigma

    def align_references(self, degraded: np.ndarray, refs: Sequence, size: int) -> List[AlignedReference]:
        """Warp each reference (people.Reference) onto the degraded aligned crop."""
        d_y = to_ycc(degraded)[..., 0]
        fs = self.flow_sigma or max(1.5, size / 96.0)
        d_n = _normalise(_gauss(d_y, fs), size / 16.0)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        out: List[AlignedReference] = []
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        for ref in refs:
            aff = estimate_affine(ref.face.landmarks, size)
            crop = warp_to_crop(ref.image, aff, size).astype(np.float32)
            r_y = to_ycc(crop)[..., 0]
            r_n = _normalise(_gauss(r_y, fs), size / 16.0)
            flow = dis.calc(d_n, r_n, None)
            # Keep the flow smooth: the similarity transform already did the large motion.
            flow = np.stack([_gauss(flow[..., i], size / 24.0) for i in range(2)], axis=-1)
            lim = size / 12.0
            flow = np.clip(flow, -lim, lim)
            warped = cv2.remap(crop, xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT101)
            w_n = _normalise(_gauss(to_ycc(warped)[..., 0], fs), size / 16.0).astype(np.float32)
            diff = _gauss((w_n - d_n.astype(np.float32)) ** 2, size / 24.0)
            agree = np.exp(-diff / (2 * 30.0 ** 2)).astype(np.float32)
            out.append(AlignedReference(ref.label, warped, agree, float(agree.mean())))
        return out

    def restore(self, degraded: np.ndarray, aligned: Sequence[AlignedReference],
                base: Optional[np.ndarray] = None, photo_detail: float = 0.0,
                split_sigma: Optional[float] = None) -> np.ndarray:
        """Restored crop (RGB uint8). ``base`` is the image to take structure from (defaults to
        the degraded crop; the pipeline passes the scene-restored crop on its second pass)."""
        return self.restore_with_gain(degraded, aligned, base, photo_detail, split_sigma)[0]

    def restore_with_gain(self, degraded: np.ndarray, aligned: Sequence[AlignedReference],
                          base: Optional[np.ndarray] = None, photo_detail: float = 0.0,
                          split_sigma: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(restored crop, gain): ``gain`` (HxW, 0..1) is where reference detail was used. Where
        no reference agrees with the photo (another age, a beard, an open mouth), the photo keeps
        its own detail: a reference's detail there would draw someone else's face."""
        base = degraded if base is None else base
        size = base.shape[0]
        ss = self.split_sigma if split_sigma is None else split_sigma
        ss = float(min(ss, max(1.2, size / 85.0)))  # small faces: only the finest detail
        b = to_ycc(base)
        low_y = _gauss(b[..., 0], ss)
        photo_hi = b[..., 0] - low_y
        chroma_low = np.stack([_gauss(b[..., c], ss * 1.5) for c in (1, 2)], axis=-1)
        chroma = chroma_low + photo_detail * (b[..., 1:] - chroma_low)
        if not aligned:
            gain = np.zeros_like(low_y)
            out_y = low_y + photo_detail * photo_hi
        else:
            num = np.zeros_like(low_y)
            wsq = np.full_like(low_y, 1e-12)
            best = np.zeros_like(low_y)
            for ar in aligned:
                r_y = to_ycc(ar.crop)[..., 0]
                r_low = _gauss(r_y, ss)
                # Reference detail, rescaled by the local brightness ratio (lighting differs).
                ratio = np.clip((low_y + 8.0) / (r_low + 8.0), 0.5, 2.0)
                w = ar.agreement ** 4 + 1e-4
                num += w * (r_y - r_low) * ratio
                wsq += w * w
                best = np.maximum(best, ar.agreement)
            # Details of different references are uncorrelated: dividing by the root of the summed
            # squared weights (not their sum) keeps the blend's detail energy that of one face.
            ref_detail = num / np.sqrt(wsq)
            gain = np.clip((best - AGREE_LO) / (AGREE_HI - AGREE_LO), 0.0, 1.0).astype(np.float32)
            detail = (1 - photo_detail) * ref_detail + photo_detail * photo_hi
            out_y = low_y + gain * detail + (1 - gain) * photo_hi
        out = to_rgb(np.concatenate([out_y[..., None], chroma], axis=-1))
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), gain
