"""The Metric-Aware HMR network (arXiv 2511.13282): SAT-HMR + FoV head + kid-aware SMPL (api.md
§1).

image_bgr ──preprocess──► (3,Hp,Wp) ──MetricAwareHMR──► pred_*
          ──postprocess(body=SMPLBody)──► HumanEstimate
"""

from mahmr_ros.model.checkpoint import CheckpointError, detect_config, load_checkpoint
from mahmr_ros.model.config import (
    PRESETS,
    TINY_OVERRIDES,
    ModelConfig,
    build_model,
    resolve_config,
)
from mahmr_ros.model.network import MetricAwareHMR
from mahmr_ros.model.postprocess import postprocess
from mahmr_ros.model.preprocess import PreprocessMeta, preprocess, stack_batch
from mahmr_ros.model.pretrained import load_dinov2, load_smpl_mean_params, upright_mean_pose
from mahmr_ros.types import HumanEstimate

__all__ = [
    "PRESETS",
    "TINY_OVERRIDES",
    "CheckpointError",
    "HumanEstimate",
    "MetricAwareHMR",
    "ModelConfig",
    "PreprocessMeta",
    "build_model",
    "detect_config",
    "load_checkpoint",
    "load_dinov2",
    "load_smpl_mean_params",
    "postprocess",
    "preprocess",
    "resolve_config",
    "stack_batch",
    "upright_mean_pose",
]
