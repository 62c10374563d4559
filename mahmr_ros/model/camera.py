"""Cameras of the network and of the real sensor, and how people move from one to the other.

Pixel conventions. The network works in continuous coordinates of the resized image (pixel i spans
[i, i+1), principal point (w'/2, h'/2), spec §8 #3). Everything we return in original-image pixels
uses the OpenCV / ROS ``CameraInfo`` convention (pixel centres on integers): ``u_img = u_net / r -
0.5``.

Known intrinsics (a ``CameraInfo`` K). The network places every person for its OWN pinhole camera:
focal from the FoV head (or the fixed 60° FoV), principal point at the image centre. A real camera
differs in focal length and principal point, so the same 3D people would land on other pixels. We
trust the image evidence (where the person is and how big they look) and the metric body (pose and
shape), and re-place each person in the real camera (``reconcile_to_camera``):

1. keep the pixel of the pelvis: back-project it with the real K;
2. keep the apparent size: depth ``z' = z * f_real / f_net`` (``f = sqrt(fx fy)``), since a body of
   fixed metric size looks ``f / z`` big;
3. keep the view: rotate the body about its pelvis by the rotation ``R_c`` that turns the old line
   of sight into the new one, so the camera sees the same side of the person (``R_glob' = R_c
   R_glob``).

Every point then reprojects onto (almost) the same pixel as before: the pelvis exactly, other
points up to the perspective difference ``dz (1 - f_net / f_real) / z`` (dz = the point's depth
offset from the pelvis), about 1 % of the body's pixel extent for a 20 % focal change at 3 m.
``test_camera.py`` checks this.
"""

from __future__ import annotations

import numpy as np

# Also what old imports of ``camera.project`` / ``camera.rotation_between`` get (deprecated there).
from mahmr_ros.geometry import project, rotation_between, unproject


def intrinsics_net_to_img(K_net: np.ndarray, scale: float) -> np.ndarray:
    """(3, 3) K in continuous resized-image pixels -> (3, 3) K in original pixels (integer
    centres)."""
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


def reconcile_to_camera(
    vertices: np.ndarray,
    joints: np.ndarray,
    global_orient: np.ndarray,
    transl: np.ndarray,
    K_from: np.ndarray,
    K_to: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Re-place people predicted for camera ``K_from`` into camera ``K_to`` (module docstring,
    steps 1-3).

    Args:
        vertices: (P, V, 3) metres, camera frame of ``K_from``.
        joints: (P, J, 3) metres, same frame; joint 0 is the pelvis (the rotation centre of SMPL's
            root).
        global_orient: (P, 3, 3) root rotations in that frame.
        transl: (P, 3) SMPL-origin translations.
        K_from: (3, 3) the network's camera, original-image pixels.
        K_to: (3, 3) the real camera, same pixels.

    Returns:
        vertices, joints, global_orient, transl (same shapes, float64) in the frame of ``K_to``,
        and the per-person (P, 3, 3) rotations ``R_c`` that were applied about the pelvis.
    """
    K_from = np.asarray(K_from, np.float64)
    K_to = np.asarray(K_to, np.float64)
    pelvis = np.asarray(joints, np.float64)[:, 0]  # (P, 3)
    uv = project(pelvis, K_from)  # (P, 2), pixel of the pelvis: kept
    f_from = np.sqrt(K_from[0, 0] * K_from[1, 1])
    f_to = np.sqrt(K_to[0, 0] * K_to[1, 1])
    z_new = pelvis[:, 2] * f_to / f_from  # same apparent size f / z
    pelvis_new = unproject(uv, K_to, depth_m=z_new)  # (P, 3): same pixel, new depth
    R_c = (
        np.stack([rotation_between(p, q) for p, q in zip(pelvis, pelvis_new)])
        if len(pelvis)
        else np.zeros((0, 3, 3))
    )

    def move(points):
        points = np.asarray(points, np.float64)
        return np.einsum("pij,pnj->pni", R_c, points - pelvis[:, None]) + pelvis_new[:, None]

    orient = np.einsum("pij,pjk->pik", R_c, np.asarray(global_orient, np.float64))
    # Rotating about the pelvis (= J0 + t) keeps J0 + t fixed, so the origin moves with the pelvis.
    transl_new = np.asarray(transl, np.float64) + pelvis_new - pelvis
    return move(vertices), move(joints), orient, transl_new, R_c
