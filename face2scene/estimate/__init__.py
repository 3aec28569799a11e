"""The degradation estimate: how the photo was degraded (noise, blur, JPEG, downscale).

- :mod:`.analytic` — FaDeX by analysis by synthesis on the restored faces (``estimate_from_face``),
  fused over faces (``fuse_estimates``), and the whole-photo ``blind_estimate``. No weights.
- :mod:`.jpeg` — JPEG quality read from the decoded pixels' DCT statistics, and the block grid
  of a JPEG resized after its compression (``resized_grid``), which that reading misses.
- :mod:`.learned` — the learned FaDeX encoder's code and explicit estimate (imports torch; used by
  the learned restorers, training and the benchmark only).
"""
from .analytic import blind_estimate, estimate_from_face, fuse_estimates
from .jpeg import estimate_jpeg_quality

__all__ = ["blind_estimate", "estimate_from_face", "fuse_estimates", "estimate_jpeg_quality"]
