"""Parameters of DTO-Lite (``mahmr_ros.dto.lite``), shared by its cue, solve and filter steps."""

from __future__ import annotations

from dataclasses import dataclass

from mahmr_ros.dto.cues import MIN_VISIBLE_FRACTION
from mahmr_ros.dto.shape import SECANT_STEPS


@dataclass
class LiteConfig:
    """Parameters of DTO-Lite.

    Attributes:
        num_samples: vertex subset size per person (~1000, spec §10.3).
        render_scale: z-buffer resolution relative to the image (1/4).
        vis_tol_m: visibility tolerance against the splatted z-buffer, metres (spec: 1-5 cm).
        erode_px: mask erosion (image pixels) tested at each sample (RGB-D flying pixels at
            silhouettes).
        iqr_factor: IQR trim of the depth samples.
        min_visible_fraction: removal, visible samples below this fraction of the subset.
        min_samples: removal, fewer valid depth samples than this.
        use_gender: gender prior on (reference default) or the no-gender mode.
        sensor_sigma0_m, sensor_k_per_m: RGB-D noise sigma_Z(D) = sigma0 + k D^2, metres.
        relative_sigma: relative cue model error, as a fraction of Z (a soft constraint; small =
            DTO).
        alpha_min: lower bound on alpha for the relative cue (cue units; a nearer person has a
            smaller cue).
        ab_process_sigma: per-frame random walk of (alpha, beta) in the temporal prior (static
            camera).
        height_process_sigma_m: per-frame random walk of a track's metric height.
        track_ttl: frames a track's state is kept without being seen.
        shape_steps: steps of the SMPL beta update (1 = reference secant step).
    """

    num_samples: int = 1000
    render_scale: float = 0.25
    vis_tol_m: float = 0.05
    erode_px: int = 2
    iqr_factor: float = 1.5
    min_visible_fraction: float = MIN_VISIBLE_FRACTION
    min_samples: int = 20
    use_gender: bool = True
    sensor_sigma0_m: float = 0.01
    sensor_k_per_m: float = 1.5e-3
    relative_sigma: float = 0.01
    alpha_min: float = 0.0
    ab_process_sigma: tuple[float, float] = (0.02, 0.05)
    height_process_sigma_m: float = 0.005
    track_ttl: int = 30
    shape_steps: int = SECANT_STEPS
