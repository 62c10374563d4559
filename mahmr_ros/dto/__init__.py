"""DTO: depth-conditioned translation optimisation (spec dto §3) and its per-frame variant DTO-Lite
(§10)."""

from mahmr_ros.dto.apply import apply_scale
from mahmr_ros.dto.cues import Cues, extract_cues
from mahmr_ros.dto.depth import RelativeDepthModel, disparity_to_cue, metric_depth_m
from mahmr_ros.dto.lite import DTOLite, LiteConfig
from mahmr_ros.dto.priors import PersonPrior, age_class, height_prior
from mahmr_ros.dto.refine import DTOConfig, refine
from mahmr_ros.dto.shape import ShapeModel
from mahmr_ros.dto.solve import GroupSolution, solve_group

__all__ = [
    "Cues",
    "DTOConfig",
    "DTOLite",
    "GroupSolution",
    "LiteConfig",
    "PersonPrior",
    "RelativeDepthModel",
    "ShapeModel",
    "age_class",
    "apply_scale",
    "disparity_to_cue",
    "extract_cues",
    "height_prior",
    "metric_depth_m",
    "refine",
    "solve_group",
]
