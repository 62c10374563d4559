"""A SYNTHETIC, SMPL-format body model for tests and demos. It is NOT a real human body model.

``make_synthetic_smpl`` writes a file with SMPL's array names and shapes (``v_template``, ``f``,
``J_regressor``, ``weights``, ``kintree_table``, ``shapedirs``, ``posedirs``) that ``smplx`` and
:class:`mahmr_ros.body.SMPLBody` load like the real ``SMPL_NEUTRAL`` file, so the whole package can
be built and tested without the licensed SMPL download. The body is a hand-made humanoid: 16
closed, outward-oriented (counter-clockwise seen from outside) parts (pelvis, abdomen, chest, neck,
head, and per side shoulder, upper arm, forearm, hand, thigh, shin, foot), standing in SMPL's
canonical T-pose (y up towards the head, z out of the body front, x to the body's left), about 1.70
m tall with the soles at the bottom. Everything about it is invented from first principles; none of
it is derived from SMPL data.

* Joints: ``J_regressor`` (24, V) averages whole vertex rings of the limb and trunk tubes, so each
  joint sits on the axis of its part (pelvis, hips, knees, ankles, spine, neck, head, shoulders,
  elbows, wrists, ...).
* Skinning: each vertex is weighted over the joints allowed for its part by a soft-min of its
  distance to their bones, so rotating a knee or elbow bends the limb below it and blends near the
  joint.
* Shape: ``shapedirs[..., 0]`` makes the body taller (+6 cm per unit, x/z grow half as much);
  components 1-9 change girth, shoulder width, leg/torso ratio, head size, arm length, torso depth,
  hip width, torso width, foot length (their magnitudes jitter with ``seed``).
* Pose correctives: ``posedirs`` are small seeded random offsets (<= a few mm) on the vertices
  around each joint, zero elsewhere, only so that the pose-blend path is exercised.
* Kid template (optional ``.npy``): the same mesh with child proportions, about 1.10 m tall with a
  larger head-to-height ratio; SMPL-A's kid blend (spec mahmr_model §1.9) turns it into the 11th
  shape component.
* With ``num_vertices == 6890`` the 21 smplx vertex joints (nose, eyes, ears, toes, heels, finger
  tips) are placed on anatomically matching vertices at smplx's default indices; the same indices
  for any V are stored in the file as ``joint_vertex_ids`` (spec order of §1.9), which
  :class:`SMPLBody` uses.

The file also carries ``synthetic = True`` and a ``description`` string saying so.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np

from mahmr_ros.body.synthetic_mesh import (
    _ADULT,
    _KID,
    _SHAPE_COMPONENTS,
    _STATURE_STEP,
    _body,
    _build_topology,
    _layout,
    _Part,
    _part_frame,
    _part_of_vertex,
    _positions,
    _rings,
    _Topology,
)

#: SMPL's kinematic tree: parent of each of the 24 joints (-1 = root).
SMPL_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
)

#: Names of the 21 vertex-picked joints in smplx / spec mahmr_model §1.9 order.
VERTEX_JOINT_KEYS = (
    "nose", "reye", "leye", "rear", "lear",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
    "lthumb", "lindex", "lmiddle", "lring", "lpinky",
    "rthumb", "rindex", "rmiddle", "rring", "rpinky",
)  # fmt: skip

#: smplx's default SMPL vertex indices of those joints (spec mahmr_model §1.9).
SMPL_VERTEX_JOINT_IDS = (
    332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787,
    2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133,
)  # fmt: skip

SMPL_NUM_VERTICES = 6890
NUM_POSE_FEATURES = 207  # 23 joints x 9 entries of (R - I)
DESCRIPTION = (
    "SYNTHETIC SMPL-format body made by mahmr_ros.body.synthetic for tests; not a real body "
    "model, not derived from SMPL data"
)

#: Softness of the skinning weights: distance (m) over which a bone's weight drops by e.
_SKIN_SOFTNESS_M = 0.02


def _joint_regressor(
    parts: list[_Part], topo: _Topology, placements: dict, num_vertices: int
) -> np.ndarray:
    """(24, V) rows of non-negative weights summing to 1: a blend of the two rings around each
    joint."""
    by_name = {p.name: (i, p) for i, p in enumerate(parts)}
    J_regressor = np.zeros((24, num_vertices))
    for joint, (name, s_joint) in placements.items():
        idx, part = by_name[name]
        n_seg, n_cap, n_mid = topo.counts[idx]
        s, _ = _rings(part, n_cap, n_mid)
        if s_joint is None:  # the end of the part's axis
            s_joint = _part_frame(part)[1]
        k = int(np.clip(np.searchsorted(s, s_joint) - 1, 0, len(s) - 2))
        t = float(np.clip((s_joint - s[k]) / (s[k + 1] - s[k]), 0.0, 1.0))
        for ring, w in ((k, 1 - t), (k + 1, t)):
            first = topo.part_offsets[idx] + 1 + ring * n_seg
            J_regressor[joint, first : first + n_seg] += w / n_seg
    return J_regressor


def _bones(joints: np.ndarray, ends: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Bone segments (24, 3) starts and (24, 3) ends: joint -> its main child (or a leaf end
    point)."""
    child = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 12: 15, 13: 16, 14: 17,
             16: 18, 17: 19, 18: 20, 19: 21, 20: 22, 21: 23}  # fmt: skip
    end = np.array([joints[child[j]] if j in child else ends[j] for j in range(24)])
    return joints.copy(), end


def _skinning_weights(verts: np.ndarray, part_of: np.ndarray, parts: list[_Part],
                      joints: np.ndarray,
                      leaf_ends: dict[int, np.ndarray]) -> np.ndarray:  # fmt: skip
    """(V, 24) skinning weights: soft-min of the distance to the bones allowed for the vertex's
    part."""
    start, end = _bones(joints, leaf_ends)
    seg = end - start  # (24, 3)
    t = np.einsum("vjc,jc->vj", verts[:, None] - start[None], seg) / np.maximum(
        (seg**2).sum(1), 1e-12
    )
    closest = start[None] + np.clip(t, 0, 1)[..., None] * seg[None]  # (V, 24, 3)
    dist = np.linalg.norm(verts[:, None] - closest, axis=2)  # (V, 24)
    allowed = np.zeros((len(parts), 24), bool)
    for i, part in enumerate(parts):
        allowed[i, list(part.joints)] = True
    dist = np.where(allowed[part_of], dist, np.inf)
    logits = -(dist - dist.min(1, keepdims=True)) / _SKIN_SOFTNESS_M
    weights = np.exp(logits)
    weights[weights < 1e-4] = 0.0
    return weights / weights.sum(1, keepdims=True)


def _landmark_vertices(
    verts: np.ndarray, part_of: np.ndarray, parts: list[_Part], landmarks: dict
) -> np.ndarray:
    """(21,) distinct vertex indices nearest to each landmark, searched within the landmark's body
    part."""
    part_for = {"nose": "head", "reye": "head", "leye": "head", "rear": "head", "lear": "head"}
    names = [p.name for p in parts]
    chosen = []
    for key in VERTEX_JOINT_KEYS:
        if key in part_for:
            part = part_for[key]
        elif key[1:] in ("BigToe", "SmallToe", "Heel"):
            part = f"{key[0].lower()}_foot"
        else:
            part = f"{key[0]}_hand"
        candidates = np.flatnonzero(part_of == names.index(part))
        candidates = candidates[~np.isin(candidates, chosen)]
        dist = np.linalg.norm(verts[candidates] - landmarks[key], axis=1)
        chosen.append(int(candidates[np.argmin(dist)]))
    return np.asarray(chosen, np.int64)


def _posedirs(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 207) small random pose correctives on the vertices around each of joints 1..23,
    else 0."""
    V = len(weights)
    posedirs = np.zeros((V, 3, NUM_POSE_FEATURES))
    for joint in range(1, 24):
        near = (weights[:, joint] > 0.2) & (weights[:, joint] < 0.8)
        block = slice(9 * (joint - 1), 9 * joint)
        posedirs[near, :, block] = rng.normal(0.0, 0.0015, size=(int(near.sum()), 3, 9))
    return posedirs


# -------------------------------------------------------------------------------------------------


def synthetic_smpl_arrays(
    num_vertices: int = SMPL_NUM_VERTICES, seed: int = 0
) -> dict[str, np.ndarray]:
    """Build the SYNTHETIC SMPL-format arrays in memory (see the module docstring; not a real
    body).

    Args:
        num_vertices: V, the exact vertex count (6890 = SMPL's; at least ~600).
        seed: seeds the pose correctives and the magnitudes of shape components 1-9.

    Returns:
        Dict of numpy arrays, canonical frame (y up, z front, x left), metres, centred on the
        vertex mean: ``v_template`` (V, 3) float64, ``f`` (F, 3) int64 (counter-clockwise from
        outside), ``J_regressor`` (24, V), ``weights`` (V, 24), ``kintree_table`` (2, 24) int64
        (row 0 = parents, root -1), ``shapedirs`` (V, 3, 10), ``posedirs`` (V, 3, 207),
        ``kid_template`` (V, 3) (child body, same frame and offset), ``joint_vertex_ids`` (21,)
        int64 (spec order), ``synthetic`` () bool True, ``description`` () str.
    """
    num_vertices = int(num_vertices)
    rng = np.random.default_rng(seed)
    joints, parts, landmarks, placements = _layout(_ADULT)
    topo = _build_topology(parts, num_vertices)
    verts = _positions(parts, topo)
    part_of = _part_of_vertex(topo)

    names = [p.name for p in parts]
    head, lhand, rhand = (parts[names.index(n)] for n in ("head", "l_hand", "r_hand"))
    leaf_ends = {
        15: np.asarray(head.end) + np.array([0, head.cap_end, 0]),
        22: np.asarray(lhand.end),
        23: np.asarray(rhand.end),
        10: np.asarray(parts[names.index("l_foot")].end),
        11: np.asarray(parts[names.index("r_foot")].end),
    }
    weights = _skinning_weights(verts, part_of, parts, joints, leaf_ends)
    J_regressor = _joint_regressor(parts, topo, placements, num_vertices)
    landmark_ids = _landmark_vertices(verts, part_of, parts, landmarks)

    shapedirs = np.zeros((num_vertices, 3, 10))
    shapedirs[:, :, 0] = (
        _body(dataclasses.replace(_ADULT, stature=1 + _STATURE_STEP), topo) - verts
    )
    jitter = 1.0 + 0.15 * rng.uniform(-1, 1, size=len(_SHAPE_COMPONENTS))
    for k, (changes, scale) in enumerate(zip(_SHAPE_COMPONENTS, jitter), start=1):
        varied = {field: getattr(_ADULT, field) * (1 + rel * scale) for field, rel in changes}
        shapedirs[:, :, k] = _body(dataclasses.replace(_ADULT, **varied), topo) - verts
    kid = _body(_KID, topo)
    posedirs = _posedirs(weights, rng)

    # Place the vertex joints at smplx's default indices when V is SMPL's (a vertex permutation).
    order = np.arange(num_vertices)
    if num_vertices == SMPL_NUM_VERTICES:
        targets = np.asarray(SMPL_VERTEX_JOINT_IDS)
        rest_new = np.setdiff1d(order, targets)
        rest_old = np.setdiff1d(order, landmark_ids)
        order = np.empty(num_vertices, np.int64)
        order[targets] = landmark_ids
        order[rest_new] = rest_old
    inverse = np.argsort(order)

    center = verts.mean(0)
    kintree = np.stack([SMPL_PARENTS, np.arange(24)]).astype(np.int64)
    return {
        "v_template": verts[order] - center,
        "f": inverse[topo.faces],
        "J_regressor": J_regressor[:, order],
        "weights": weights[order],
        "kintree_table": kintree,
        "shapedirs": shapedirs[order],
        "posedirs": posedirs[order],
        "kid_template": kid[order] - center,
        "joint_vertex_ids": inverse[landmark_ids],
        "synthetic": np.array(True),
        "description": np.array(DESCRIPTION),
    }


def make_synthetic_smpl(
    path: str | Path,
    num_vertices: int = SMPL_NUM_VERTICES,
    seed: int = 0,
    kid_template_path: str | Path | None = None,
) -> Path:
    """Write a deterministic SYNTHETIC SMPL-format model file (for tests; never a real body model).

    The humanoid is described in the module docstring: ~1.70 m T-pose, y up, 24 rigged joints, 10
    shape components (component 0: +6 cm height per unit), optional ~1.10 m kid template.

    Args:
        path: output file; ``.npz`` (plain arrays, ``np.load``-able without pickle) or ``.pkl`` (a
            pickle of a dict of plain numpy arrays, as smplx expects of an SMPL ``.pkl``). Parent
            folders are created.
        num_vertices: V, exact vertex count. 6890 (SMPL's) also puts the 21 vertex joints at
            smplx's default indices; other values need the stored ``joint_vertex_ids`` (SMPLBody
            reads them).
        seed: makes the file deterministic; different seeds change the pose correctives and the
            magnitudes of shape components 1-9 only.
        kid_template_path: if given, also write the (V, 3) float64 child template (metres, same
            canonical frame) there as ``.npy``, for SMPL-A's kid blend.

    Returns:
        The path of the model file.

    Raises:
        ValueError: on an unsupported suffix or a too small ``num_vertices``.
    """
    path = Path(path)
    if path.suffix not in (".npz", ".pkl"):
        raise ValueError(f"[body.synthetic] model path must end in .npz or .pkl, got '{path}'")
    arrays = synthetic_smpl_arrays(num_vertices, seed)
    kid = arrays.pop("kid_template")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        np.savez_compressed(path, **arrays)
    else:
        plain = {k: (v.item() if v.ndim == 0 else v) for k, v in arrays.items()}
        with open(path, "wb") as file:
            pickle.dump(plain, file, protocol=4)
    if kid_template_path is not None:
        kid_template_path = Path(kid_template_path)
        kid_template_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(kid_template_path, kid)
    return path
