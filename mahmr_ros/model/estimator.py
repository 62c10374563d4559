"""``MahmrEstimator``: the MA-HMR network + kid-aware SMPL as a pipeline estimator (``estimator:
mahmr``).

One frame: ``preprocess`` (resize to the network's long side, pad to 56) -> network (a runtime
backend) -> ``postprocess`` (threshold, SMPL, original-image pixels). With a known K
(``CameraInfo``) every person is re-placed in that camera so that it covers the same pixels
(``camera.reconcile_to_camera``: pelvis pixel, apparent size and view kept); without one, the
network's own FoV camera is reported as ``K_used`` with ``K_estimated=True``.

It is built by ``Pipeline.from_config`` from the ``model`` config section::

    model:
      config: fov_kid  # fov_kid / fov / default, "auto" (read from the checkpoint) or a dict
      weights: mahmr_stage3.bin  # the official checkpoint (CC BY-NC 4.0, downloaded by the user)
      smpl_path: SMPL_NEUTRAL.pkl  # or its .npz from `python -m mahmr_ros.cli convert-smpl`
      kid_template_path: smpl_kid_template.npy  # AGORA; without it children get adult proportions
      conf_thresh: 0.3
      device: auto  # auto / cpu / cuda[:i]
      backend: auto  # auto / torch / onnxruntime / tensorrt (mahmr_ros.runtime), eager = torch
      precision: fp32  # fp32 / bf16 / fp16 (runtime backends only)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mahmr_ros.body import SMPLBody
from mahmr_ros.device import resolve_device
from mahmr_ros.dto.shape import ShapeModel
from mahmr_ros.model.camera import intrinsics_net_to_img
from mahmr_ros.model.checkpoint import detect_config, load_checkpoint, read_state_dict
from mahmr_ros.model.config import build_model
from mahmr_ros.model.postprocess import postprocess
from mahmr_ros.model.preprocess import preprocess
from mahmr_ros.types import Estimation, MeshTopology

LOG = logging.getLogger(__name__)


def make_backend(model: torch.nn.Module, backend: str, precision: str, device: torch.device):
    """The network runner: a ``mahmr_ros.runtime`` backend.

    ``eager`` is the runtime's ``TorchBackend`` at fp32 (the plain float32 network on ``device``);
    ``auto`` falls back to it when the backend it picked cannot be built here.

    Raises:
        ValueError: ``eager`` with a precision other than fp32.
        mahmr_ros.runtime.BackendError: an explicitly requested runtime backend cannot run here.
    """
    from mahmr_ros.runtime import create_backend
    from mahmr_ros.runtime.torch_backend import TorchBackend

    if backend == "eager":
        if precision != "fp32":
            raise ValueError(
                f"[model.estimator] backend 'eager' runs fp32 only, got precision '{precision}'"
            )
        return TorchBackend(model, device=device, precision="fp32")
    try:
        return create_backend(model, backend=backend, precision=precision, device=device)
    except RuntimeError as err:
        if backend != "auto" or precision != "fp32":
            raise
        LOG.warning(
            "[model.estimator] backend auto: runtime backend unavailable (%s); using torch fp32",
            err,
        )
        return TorchBackend(model, device=device, precision="fp32")


def check_body_against_checkpoint(
    body: SMPLBody, state_dict: Mapping, source: str
) -> dict[str, float]:
    """Compare the user's SMPL files with the SMPL data the official checkpoint embeds
    (``human_model.*``).

    The checkpoint carries the template and shape basis the authors trained with (spec §2.1); we
    never use them, but a different neutral model (e.g. SMPL 1.1 instead of SMPLify's) or another
    kid template silently changes every body, so a mismatch is logged as a warning.

    Returns:
        ``{"v_template": max |diff| m, "kid_blend": max |diff| m}`` for the parts that could be
        compared.
    """
    result: dict[str, float] = {}
    prefix = "human_model.layer_n."
    template = state_dict.get(prefix + "v_template")
    if template is not None and tuple(template.shape) == body.arrays["v_template"].shape:
        result["v_template"] = float(
            np.abs(template.double().numpy() - body.arrays["v_template"]).max()
        )
    dirs = state_dict.get(prefix + "shapedirs")
    if body.has_kid_blend and dirs is not None and tuple(dirs.shape[:2]) == (body.num_vertices, 3):
        if dirs.shape[2] == 11:
            ours = body.layer.shapedirs[..., 10].detach().double().cpu().numpy()
            result["kid_blend"] = float(np.abs(dirs[..., 10].double().numpy() - ours).max())
    for name, diff in result.items():
        if diff > 1e-4:
            LOG.warning(
                "[model.estimator] your SMPL %s differs from the one %s was trained with by up to "
                "%.4f m (expected: SMPLify neutral basicModel_neutral_lbs_10_207_0_v1.0.0 and "
                "AGORA's kid template)",
                name,
                source,
                diff,
            )
    return result


class MahmrEstimator:
    """Pipeline estimator over the MA-HMR network (see the module docstring for the config keys).

    Args:
        config: model config name (``fov_kid`` / ``fov`` / ``default``), ``"auto"`` (detected from
            the checkpoint's keys) or an override dict (``build_model``).
        weights: checkpoint path (``mahmr_stage{1,2,3}.bin``, ``sat_644.pth``, or any state_dict
            file).
        smpl_path: neutral SMPL model file (``.pkl`` or converted ``.npz``).
        kid_template_path: AGORA kid template ``.npy``; "" = none (the kid blend is then reported
            only).
        conf_thresh: detection threshold (strict >, spec §3.3).
        device: ``auto`` / ``cpu`` / ``cuda[:i]``.
        backend: ``auto`` / ``torch`` / ``onnxruntime`` / ``tensorrt`` / ``eager``.
        precision: ``fp32`` / ``bf16`` / ``fp16``.

    Raises:
        ValueError: weights or SMPL path not set (the message names the config key).
        FileNotFoundError, CheckpointError, SMPLFileError: unreadable or mismatching files (named).
    """

    body_model = "smpl"

    def __init__(
        self,
        config: str | Mapping = "fov_kid",
        weights: str | Path = "",
        smpl_path: str | Path = "",
        kid_template_path: str | Path = "",
        conf_thresh: float = 0.3,
        device: str = "auto",
        backend: str = "auto",
        precision: str = "fp32",
    ):
        if not weights:
            raise ValueError(
                "[model.estimator] model.weights is not set: pass the official checkpoint "
                "(mahmr_stage3.bin, see README 'Official weights') or use estimator: offline"
            )
        if not smpl_path:
            raise ValueError(
                "[model.estimator] model.smpl_path is not set: pass SMPL_NEUTRAL.pkl (or its .npz "
                "from `python -m mahmr_ros.cli convert-smpl`)"
            )
        if not 0.0 <= float(conf_thresh) < 1.0:
            raise ValueError(f"[model.estimator] conf_thresh must be in [0, 1), got {conf_thresh}")
        self.conf_thresh = float(conf_thresh)
        self.device = resolve_device(device, where="model.estimator")
        state_dict = read_state_dict(weights)
        if isinstance(config, str) and config == "auto":
            config = detect_config(state_dict)
        model = build_model(config)
        self.report = load_checkpoint(model, state_dict, strict=True, source=str(weights))
        self.cfg = model.cfg
        self.body = SMPLBody(smpl_path, kid_template_path or None, device=self.device)
        self.smpl_check = check_body_against_checkpoint(self.body, state_dict, str(weights))
        del state_dict
        if self.cfg.num_betas == 11 and not self.body.has_kid_blend:
            LOG.warning(
                "[model.estimator] the network predicts a kid blend but no kid_template_path is "
                "set: children get adult SMPL proportions (betas[10] is still reported)"
            )
        self.backend = make_backend(model, backend, precision, self.device)
        LOG.info(
            "[model.estimator] %s (%s) on %s via %s %s",
            Path(weights).name,
            self.report["detected_config"],
            self.device,
            self.backend.name,
            self.backend.precision,
        )

    def topology(self) -> MeshTopology:
        """SMPL faces and the 45 joint names."""
        return self.body.topology()

    def shape_model(self) -> ShapeModel:
        """The SMPL(-A) shape space of the body, for DTO's shape update (``Estimator`` optional
        method)."""
        return ShapeModel.from_smpl_body(self.body)

    def estimate(self, image_bgr: np.ndarray, K: np.ndarray | None) -> Estimation:
        """People in one frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            K: (3, 3) intrinsics of this image, pixels (``CameraInfo.k``), or None = the network's
                FoV camera.

        Returns:
            ``Estimation`` with the people in the camera frame of ``K_used`` (original-image
            pixels), sorted by descending confidence; timings in ms for ``preprocess``, ``network``
            (plus the backend's own stages as ``network.<stage>``) and ``postprocess`` (SMPL
            included).
        """
        if self.backend is None:
            raise RuntimeError("[model.estimator] estimate() after close()")
        timings: dict[str, float] = {}
        t = time.perf_counter()
        tensor, meta = preprocess(image_bgr, self.cfg.input_size)
        images = tensor[None]  # the backend uploads it (torch on CUDA: through a pinned buffer)
        resized_hw = torch.tensor([meta.resized_hw], dtype=torch.int64, device=self.device)
        timings["preprocess"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        raw = self.backend(images, resized_hw)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        timings["network"] = (time.perf_counter() - t) * 1e3
        for stage, ms in getattr(self.backend, "timings_ms", {}).items():
            timings[f"network.{stage}"] = ms
        t = time.perf_counter()
        humans = postprocess(
            raw, meta, self.conf_thresh, body=self.body, K=K, use_kid_blend=self.body.has_kid_blend
        )[0]
        if K is None:
            K_used = intrinsics_net_to_img(
                raw["pred_intrinsics"][0].detach().double().cpu().numpy(), meta.scale
            )
        else:
            K_used = np.asarray(K, dtype=np.float64).reshape(3, 3)
        timings["postprocess"] = (time.perf_counter() - t) * 1e3
        return Estimation(humans=humans, K_used=K_used, K_estimated=K is None, timings_ms=timings)

    def close(self) -> None:
        """Release the network and the body model (GPU memory included)."""
        self.backend = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
