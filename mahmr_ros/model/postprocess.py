"""Raw network outputs -> ``HumanEstimate`` per person, in the ORIGINAL image's camera (spec §3.3).

Pixel conventions. The network works in continuous coordinates of the resized image (pixel i spans [i, i+1),
principal point (w'/2, h'/2), spec §8 #3). Everything we return in original-image pixels uses the
OpenCV / ROS ``CameraInfo`` convention (pixel centres on integers): ``u_img = u_net / r - 0.5``. Boxes, 2D
keypoints and the intrinsics all follow it, so joints projected with the returned K land on the returned
box. The 3D results do not depend on the image scale.

Known intrinsics (``K`` given, e.g. from ``CameraInfo``): the network placed each person for its own FoV
camera. We keep the metric body (pose, shape) and re-place it for the real camera so that it covers the same
pixels: the apparent scale f/t_z is kept (``t_z' = t_z * f_real / f_net`` = 2 f_real / (s 1288), with
f_real = sqrt(fx fy) in resized pixels) and the SMPL origin projects to the same pixel under the real K,
principal point included (``t_x' = (u - cx_real) t_z' / fx``, same for y). The returned ``focal`` and
``principal_point`` are then the given K's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mahmr_ros.model.preprocess import PreprocessMeta
from mahmr_ros.model.rotation import rotmat_to_axis_angle
from mahmr_ros.types import HumanEstimate

# Kid blend (betas[10]) above which a person counts as a child; 0 = adult, ~1 = child proportions.
KID_BLEND_CHILD = 0.5
# T-pose height below which a person counts as a child when the model has no kid blend.
CHILD_HEIGHT_M = 1.30


def intrinsics_net_to_img(K_net: np.ndarray, scale: float) -> np.ndarray:
    """(3, 3) K in continuous resized-image pixels -> (3, 3) K in original pixels (integer pixel centres)."""
    K = np.array(K_net, dtype=np.float64).reshape(3, 3)
    K[:2, :] /= scale
    K[0, 2] -= 0.5
    K[1, 2] -= 0.5
    K[2] = (0.0, 0.0, 1.0)
    return K


def intrinsics_img_to_net(K_img: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of ``intrinsics_net_to_img``: original pixels -> continuous resized-image pixels."""
    K = np.array(K_img, dtype=np.float64).reshape(3, 3).copy()
    K[0, 2] += 0.5
    K[1, 2] += 0.5
    K[:2, :] *= scale
    K[2] = (0.0, 0.0, 1.0)
    return K


def reconcile_translation(
    transl: torch.Tensor, K_net_pred: np.ndarray, K_net_real: np.ndarray
) -> torch.Tensor:
    """Re-place people predicted for the network's camera into a known camera (see module docstring).

    Args:
        transl: (P, 3) metres, SMPL-origin translations for the network camera ``K_net_pred``.
        K_net_pred: (3, 3) network camera, continuous resized-image pixels.
        K_net_real: (3, 3) the real camera in the same pixel space (``intrinsics_img_to_net``).

    Returns:
        (P, 3) metres, translations in the real camera: same origin pixel, same f / t_z ratio.
    """
    f_net = float(K_net_pred[1, 1])
    fx, fy = float(K_net_real[0, 0]), float(K_net_real[1, 1])
    tz = transl[:, 2]
    u = K_net_pred[0, 2] + K_net_pred[0, 0] * transl[:, 0] / tz
    v = K_net_pred[1, 2] + K_net_pred[1, 1] * transl[:, 1] / tz
    tz_real = tz * math.sqrt(fx * fy) / f_net
    tx_real = (u - K_net_real[0, 2]) * tz_real / fx
    ty_real = (v - K_net_real[1, 2]) * tz_real / fy
    return torch.stack([tx_real, ty_real, tz_real], dim=-1)


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection: (..., 3) metres camera frame, (3, 3) K -> (..., 2) pixels of K's image."""
    uvw = points_cam @ np.asarray(K, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def postprocess(
    raw: dict,
    meta: PreprocessMeta | Sequence[PreprocessMeta],
    conf_thresh: float = 0.3,
    body=None,
    K: np.ndarray | Sequence[np.ndarray | None] | None = None,
    use_kid_blend: bool = True,
) -> list[list[HumanEstimate]]:
    """Keep confident queries, decode SMPL, express everything in the original image's camera.

    Args:
        raw: ``MetricAwareHMR.forward`` output for B images.
        meta: the ``preprocess`` meta of each image (one meta is accepted for B = 1).
        conf_thresh: keep queries with ``pred_confs > conf_thresh`` (strict; no NMS, spec §3.3).
        body: ``mahmr_ros.body.SMPLBody`` (``forward(rotmats, betas, transl) -> (vertices, joints)``,
            ``height(betas)``).
        K: per image a (3, 3) intrinsics of the ORIGINAL image in pixels (integer pixel centres, as
            ``CameraInfo.k``) to reconcile with (see module docstring), or None to use the FoV camera.
        use_kid_blend: feed betas[10] to the body (needs a body built with the kid template); False feeds only
            the 10 SMPL betas (the kid blend is then reported but not applied).

    Returns:
        Per image, the kept people in descending confidence order.

    Raises:
        ValueError: no body model, or the metas / K do not match the batch.
    """
    if body is None:
        raise ValueError("[model.postprocess] a body model is required (mahmr_ros.body.SMPLBody)")
    metas = [meta] if isinstance(meta, PreprocessMeta) else list(meta)
    B = raw["pred_confs"].shape[0]
    Ks = [K] * B if K is None or (isinstance(K, np.ndarray) and np.asarray(K).ndim == 2) else list(K)
    if len(metas) != B or len(Ks) != B:
        raise ValueError(f"[model.postprocess] batch of {B} images but {len(metas)} metas / {len(Ks)} K")
    results = []
    for b in range(B):
        results.append(_postprocess_one(raw, b, metas[b], conf_thresh, body, Ks[b], use_kid_blend))
    return results


def _postprocess_one(raw, b, meta, conf_thresh, body, K_img, use_kid_blend) -> list[HumanEstimate]:
    confs = raw["pred_confs"][b].detach().float().cpu()
    keep = torch.nonzero(confs > conf_thresh).flatten()
    keep = keep[torch.argsort(confs[keep], descending=True)]
    r = float(meta.scale)
    K_net = raw["pred_intrinsics"][b].detach().double().cpu().numpy()
    transl = raw["pred_transl"][b, keep].detach().float().cpu()
    if K_img is None:
        K_used = intrinsics_net_to_img(K_net, r)
    else:
        K_used = np.asarray(K_img, dtype=np.float64).reshape(3, 3)
        transl = reconcile_translation(transl.double(), K_net, intrinsics_img_to_net(K_used, r)).float()
    if len(keep) == 0:
        return []
    rotmats = raw["pred_rotmats"][b, keep].detach().float().cpu()
    betas = raw["pred_betas"][b, keep].detach().float().cpu()
    body_betas = betas if use_kid_blend else betas[:, :10]
    with torch.no_grad():
        vertices, joints = body.forward(rotmats, body_betas, transl)
        heights = body.height(body_betas)
    vertices = _np(vertices)
    joints = _np(joints)
    heights = _np(heights).reshape(-1)
    aa = rotmat_to_axis_angle(rotmats).reshape(len(keep), -1).numpy()
    boxes = raw["pred_boxes"][b, keep].detach().double().cpu().numpy() * meta.input_size / r
    xyxy = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1) - 0.5
    fov = raw.get("pred_fov")
    humans = []
    for i, q in enumerate(keep.tolist()):
        kid_blend = float(betas[i, 10]) if betas.shape[1] > 10 else 0.0
        is_child = kid_blend > KID_BLEND_CHILD or float(heights[i]) < CHILD_HEIGHT_M
        humans.append(
            HumanEstimate(
                score=float(confs[q]),
                bbox_xyxy=xyxy[i],
                rotmats=rotmats[i].numpy(),
                betas=betas[i].numpy(),
                transl=transl[i].numpy(),
                vertices=vertices[i],
                joints=joints[i],
                focal=(K_used[0, 0], K_used[1, 1]),
                principal_point=(K_used[0, 2], K_used[1, 2]),
                height_m=float(heights[i]),
                is_child=is_child,
                body_model="smpl",
                pose=aa[i],
                keypoints_2d=project(joints[i].astype(np.float64), K_used).astype(np.float32),
                extras={
                    "query": q,
                    "kid_blend": kid_blend,
                    "pred_cam": raw["pred_cam"][b, q].detach().float().cpu().numpy(),
                    "fov_rad": float(fov[b]) if fov is not None else None,
                },
            )
        )
    return humans


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)
