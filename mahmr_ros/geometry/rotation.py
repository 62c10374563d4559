"""Rotation encodings: rot6d, rotation matrix, axis-angle, ``quat_xyzw`` (spec mahmr_model §1.7,
§8 #12).

One function per conversion. A torch tensor goes through ``roma`` (batched, differentiable, runs on
the tensor's device, exportable inside the network); a numpy array (or a list) goes through scipy's
``Rotation`` (float64) and comes back as numpy. scipy is the numpy choice because it is already a
core dependency, works in float64 without a torch round trip, and uses the same ``quat_xyzw`` order
as ROS.

Every function is batched over any leading dims. Rotation matrices act on column vectors (``x' = R
x``), axis-angle vectors are ``axis * angle`` in radians (angle in [0, pi]), quaternions are unit
``(x, y, z, w)`` with ``w >= 0`` (ROS order; transforms3d's ``quat_wxyz`` is never used).
"""

from __future__ import annotations

import numpy as np
import roma
import torch
from scipy.spatial.transform import Rotation
from torch import Tensor

# Smallest norm a rot6d column is divided by (torch.nn.functional.normalize's eps, as the official
# code).
_GRAM_SCHMIDT_EPS = 1e-12


def rot6d_to_rotmat(rot6d: Tensor) -> Tensor:
    """6D rotation (Zhou et al., HMR/SPIN layout, the MA-HMR checkpoints') to a rotation matrix,
    torch only.

    The 6 numbers are a row-major 3x2 matrix: column a1 = elements (0, 2, 4), column a2 = (1, 3,
    5). b1 = a1/|a1|, b2 = normalise(a2 - (b1.a2) b1), b3 = b1 x b2; R = [b1 b2 b3] as columns
    (spec §8 #12), which is ``roma.special_gramschmidt`` of that 3x2 matrix.

    Args:
        rot6d: (..., 6) float tensor.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    return roma.special_gramschmidt(
        rot6d.reshape(*rot6d.shape[:-1], 3, 2), epsilon=_GRAM_SCHMIDT_EPS
    )


def axis_angle_to_rotmat(aa):
    """Axis-angle to rotation matrices (Rodrigues).

    Args:
        aa: (..., 3) radians, tensor or array.

    Returns:
        (..., 3, 3): a tensor of ``aa``'s dtype, or a float64 array.
    """
    if isinstance(aa, Tensor):
        return roma.rotvec_to_rotmat(aa)
    aa = np.asarray(aa, np.float64)
    return _scipy(aa, 1, Rotation.from_rotvec).as_matrix().reshape(*aa.shape[:-1], 3, 3)


def rotmat_to_axis_angle(rotmat):
    """Rotation matrices to axis-angle, via the quaternion (stable at 0 and pi).

    Args:
        rotmat: (..., 3, 3), tensor or array; a slightly non-orthonormal matrix gives the nearest
            rotation's.

    Returns:
        (..., 3) radians, angle in [0, pi]: a tensor (NaN entries become 0, as the official MA-HMR
        conversion does, spec §1.7) or a float64 array.
    """
    if isinstance(rotmat, Tensor):
        return torch.nan_to_num(roma.rotmat_to_rotvec(rotmat), nan=0.0)
    rotmat = np.asarray(rotmat, np.float64)
    return _scipy(rotmat, 2, Rotation.from_matrix).as_rotvec().reshape(*rotmat.shape[:-2], 3)


def rotmat_to_quat_xyzw(rotmat):
    """Rotation matrices to unit quaternions ``(x, y, z, w)``, ``w >= 0`` (ROS ``Quaternion``
    order).

    Args:
        rotmat: (..., 3, 3), tensor or array; a slightly non-orthonormal matrix gives the nearest
            rotation's.

    Returns:
        (..., 4) quat_xyzw: a tensor or a float64 array.
    """
    if isinstance(rotmat, Tensor):
        quat = roma.rotmat_to_unitquat(rotmat)
        return torch.where(quat[..., 3:] < 0, -quat, quat)
    rotmat = np.asarray(rotmat, np.float64)
    return (
        _scipy(rotmat, 2, Rotation.from_matrix)
        .as_quat(canonical=True)
        .reshape(*rotmat.shape[:-2], 4)
    )


def quat_xyzw_to_rotmat(quat_xyzw):
    """Quaternions ``(x, y, z, w)`` (normalised here) to rotation matrices.

    A zero quaternion (an unset ROS ``Quaternion``) gives the identity, as RViz and transforms3d
    read it.

    Args:
        quat_xyzw: (..., 4), tensor or array.

    Returns:
        (..., 3, 3): a tensor or a float64 array.
    """
    if isinstance(quat_xyzw, Tensor):
        norm = quat_xyzw.norm(dim=-1, keepdim=True)
        identity = torch.zeros_like(quat_xyzw)
        identity[..., 3] = 1
        quat = torch.where(
            norm > 0, quat_xyzw / norm.clamp(min=torch.finfo(quat_xyzw.dtype).tiny), identity
        )
        return roma.unitquat_to_rotmat(quat)
    quat = np.array(quat_xyzw, np.float64)
    quat[np.linalg.norm(quat, axis=-1) == 0] = (0.0, 0.0, 0.0, 1.0)
    return _scipy(quat, 1, Rotation.from_quat).as_matrix().reshape(*quat.shape[:-1], 3, 3)


def rotation_between(a, b) -> np.ndarray:
    """(3, 3) smallest rotation R with ``R a`` parallel to ``b`` (numpy, float64).

    Args:
        a, b: (3,) non-zero vectors. Opposite vectors give a half turn about an axis perpendicular
            to ``a``.

    Returns:
        (3, 3) float64 rotation matrix about ``a x b`` by the angle between ``a`` and ``b``.
    """
    a = np.asarray(a, np.float64).reshape(1, 3)
    b = np.asarray(b, np.float64).reshape(1, 3)
    rot, _ = Rotation.align_vectors(b, a)  # one vector pair: scipy returns the minimal rotation
    return rot.as_matrix()


def _scipy(values: np.ndarray, item_dims: int, make) -> Rotation:
    """A batched scipy ``Rotation`` from (..., *item) values (scipy wants exactly one batch
    dim)."""
    item = values.shape[values.ndim - item_dims :]
    return make(values.reshape(-1, *item))
