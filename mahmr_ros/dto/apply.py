"""Applying a DTO scale to one person: scale along the camera ray, shape update, exact pelvis
placement.

Spec dto §3.5 and §10.3 step 6. With scale s about the camera centre:

* vertices, joints and pelvis become s times their old camera-frame positions, so every 2D
  projection is unchanged (u = f x / z is invariant to x, z -> s x, s z) and the body is s times
  larger and farther;
* the metric height becomes s h;
* for SMPL bodies with a ``ShapeModel``, one shape coefficient is changed so the model's zero-pose
  height is s h (the kid blend for shrunk children or results under 1.45 m, else beta_0), and the
  translation is set to t' = s (t + J0(beta)) - J0(beta'), which puts the model's pelvis exactly at
  s times its old position (smplx rotates the root about J0, so the posed pelvis is J0(beta) + t);
* any other body (Anny, or SMPL without a shape model) keeps its shape coefficients and gets t' = s
  t (the official update; exact for a uniform scale about the model origin).

The published vertices are the scaled mesh (exactly projection-invariant), not a re-skinned body
with the new betas: re-skinning needs the full body model, which the consumer of ``betas`` has.
"""

from __future__ import annotations

import warnings

import numpy as np

from mahmr_ros.dto.priors import CHILD_CLASSES
from mahmr_ros.dto.shape import KID_HEIGHT_M, SECANT_STEPS, ShapeModel
from mahmr_ros.types import HumanEstimate


def apply_scale(
    human: HumanEstimate,
    scale: float,
    *,
    shape_model: ShapeModel | None = None,
    age_class: int | None = None,
    depth_sigma_m: float = 0.0,
    height_z: float = float("nan"),
    shape_steps: int = SECANT_STEPS,
    report: dict | None = None,
    quality: float | None = None,
) -> HumanEstimate:
    """A copy of ``human`` moved along the camera ray by ``scale``.

    Args:
        human: the initial estimate (camera frame, metres).
        scale: s > 0, finite.
        shape_model: SMPL(-A) shape space for the beta update (only used when ``human.body_model ==
            "smpl"`` and the vertex counts agree).
        age_class: prior class 0..5 (selects the kid blend for shrunk children), stored on the
            result.
        depth_sigma_m: 1-sigma uncertainty of the new position along the ray, metres.
        height_z: standardised deviation |H - mu| / sigma of the new metric height from the height
            prior, stored as ``dto_height_z``.
        shape_steps: secant steps of the beta update (1 = official).
        report: stored as ``extras["dto"]`` of the result (informational).
        quality: deprecated name of ``height_z``.

    Returns:
        New ``HumanEstimate`` (same ``track_id``, score, box, pose).

    Raises:
        ValueError: scale not finite and > 0.
    """
    if quality is not None:
        msg = "apply_scale(quality=...) is deprecated, use height_z="
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        height_z = quality
    s = float(scale)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(
            f"[dto.apply] scale must be finite and > 0, got {scale} for '{human.track_id}'"
        )
    betas, transl = human.betas, s * human.transl.astype(np.float64)
    height = s * human.height_m
    use_shape = (
        shape_model is not None
        and human.body_model == "smpl"
        and human.betas.size >= 10
        and (shape_model.v_template.shape[0] == len(human.vertices) or len(human.vertices) == 0)
    )
    if use_shape:
        new_betas, _ = shape_model.update_betas(human.betas, s, age_class, steps=shape_steps)
        J0_old = shape_model.rest_pelvis(human.betas)
        J0_new = shape_model.rest_pelvis(new_betas)
        transl = s * (human.transl.astype(np.float64) + J0_old) - J0_new
        betas = new_betas[: max(len(human.betas), len(new_betas))]
        height = shape_model.height(new_betas)
    extras = dict(human.extras)
    if report is not None:
        extras["dto"] = report
    return human.replace(
        vertices=s * human.vertices,
        joints=s * human.joints,
        pelvis=s * human.pelvis,
        transl=transl,
        betas=betas,
        height_m=height,
        is_child=_is_child(human, s, height, age_class),
        dto_scale=s,
        depth_sigma_m=float(depth_sigma_m),
        dto_height_z=float(height_z),
        age_class=age_class if age_class is not None else human.age_class,
        extras=extras,
    )


def _is_child(human: HumanEstimate, scale: float, height_m: float, age_class: int | None) -> bool:
    """Child class or new height < 1.45 m; with no class and no scaling, the estimator's flag
    stays."""
    if age_class is not None:
        return bool(age_class in CHILD_CLASSES or height_m < KID_HEIGHT_M)
    if abs(scale - 1.0) < 1e-9:
        return bool(human.is_child)
    return bool(height_m < KID_HEIGHT_M)
