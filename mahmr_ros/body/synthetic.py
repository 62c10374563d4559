"""A SYNTHETIC, SMPL-format body model for tests and demos. It is NOT a real human body model.

``make_synthetic_smpl`` writes a file with SMPL's array names and shapes (``v_template``, ``f``,
``J_regressor``, ``weights``, ``kintree_table``, ``shapedirs``, ``posedirs``) that ``smplx`` and
:class:`mahmr_ros.body.SMPLBody` load like the real ``SMPL_NEUTRAL`` file, so the whole package can be
built and tested without the licensed SMPL download. The body is a hand-made humanoid: 16 closed,
outward-oriented (counter-clockwise seen from outside) parts (pelvis, abdomen, chest, neck, head, and per
side shoulder, upper arm, forearm, hand, thigh, shin, foot), standing in SMPL's canonical T-pose
(y up towards the head, z out of the body front, x to the body's left), about 1.70 m tall with the soles at
the bottom. Everything about it is invented from first principles; none of it is derived from SMPL data.

* Joints: ``J_regressor`` (24, V) averages whole vertex rings of the limb and trunk tubes, so each joint sits
  on the axis of its part (pelvis, hips, knees, ankles, spine, neck, head, shoulders, elbows, wrists, ...).
* Skinning: each vertex is weighted over the joints allowed for its part by a soft-min of its distance to
  their bones, so rotating a knee or elbow bends the limb below it and blends near the joint.
* Shape: ``shapedirs[..., 0]`` makes the body taller (+6 cm per unit, x/z grow half as much); components 1-9
  change girth, shoulder width, leg/torso ratio, head size, arm length, torso depth, hip width, torso width,
  foot length (their magnitudes jitter with ``seed``).
* Pose correctives: ``posedirs`` are small seeded random offsets (<= a few mm) on the vertices around each
  joint, zero elsewhere, only so that the pose-blend path is exercised.
* Kid template (optional ``.npy``): the same mesh with child proportions, about 1.10 m tall with a larger
  head-to-height ratio; SMPL-A's kid blend (spec mahmr_model §1.9) turns it into the 11th shape component.
* With ``num_vertices == 6890`` the 21 smplx vertex joints (nose, eyes, ears, toes, heels, finger tips) are
  placed on anatomically matching vertices at smplx's default indices; the same indices for any V are stored
  in the file as ``joint_vertex_ids`` (spec order of §1.9), which :class:`SMPLBody` uses.

The file also carries ``synthetic = True`` and a ``description`` string saying so.
"""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: SMPL's kinematic tree: parent of each of the 24 joints (-1 = root).
SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])

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
    "SYNTHETIC SMPL-format body made by mahmr_ros.body.synthetic for tests; not a real body model, "
    "not derived from SMPL data"
)

#: Softness of the skinning weights: distance (m) over which a bone's weight drops by e.
_SKIN_SOFTNESS_M = 0.02


@dataclass(frozen=True)
class _Proportions:
    """Shape parameters of the synthetic body (adult defaults; all scales are relative to them)."""

    stature: float = 1.0  # global: y scales by this, x/z by half as much
    leg: float = 1.0  # sole-to-hip length
    torso: float = 1.0  # hip-to-neck length
    head: float = 1.0  # head + neck size
    arm: float = 1.0  # shoulder-to-fingertip length
    girth: float = 1.0  # limb and neck radii
    torso_width: float = 1.0
    torso_depth: float = 1.0
    shoulder_width: float = 1.0
    hip_width: float = 1.0
    foot: float = 1.0


_ADULT = _Proportions()
_KID = _Proportions(
    leg=0.58, torso=0.66, head=0.85, arm=0.6, girth=0.62, torso_width=0.66, torso_depth=0.7,
    shoulder_width=0.62, hip_width=0.66, foot=0.6,
)  # fmt: skip

# (field, relative change) of shape components 1..9; component 0 is stature (+6 cm).
_SHAPE_COMPONENTS = (
    (("girth", 0.10), ("torso_width", 0.06), ("torso_depth", 0.08)),
    (("shoulder_width", 0.12),),
    (("leg", 0.05), ("torso", -0.075)),
    (("head", 0.08),),
    (("arm", 0.06),),
    (("torso_depth", 0.15),),
    (("hip_width", 0.10),),
    (("torso_width", 0.08),),
    (("foot", 0.10),),
)
_STATURE_STEP = 0.06 / 1.70  # relative height change of shape component 0 per unit


@dataclass(frozen=True)
class _Part:
    """One closed tube (capsule / ellipsoid) of the body, in metres, canonical frame."""

    name: str
    start: tuple  # (3,) axis start A
    end: tuple  # (3,) axis end B; equal to start for an ellipsoid (then ``axis`` is used)
    cap_start: float  # axial extent of the rounded cap before A
    cap_end: float  # axial extent of the cap after B
    radius_start: float  # cross-section radius along e1 at A
    radius_end: float  # cross-section radius along e1 at B
    aspect: float  # radius along e2 / radius along e1
    e1: tuple  # reference direction of the first cross-section axis
    joints: tuple  # joints this part may be skinned to
    resolution: tuple  # base (segments, rings per cap, middle rings)
    axis: tuple = (0.0, 1.0, 0.0)


def _layout(p: _Proportions) -> tuple[np.ndarray, list[_Part], dict[str, np.ndarray], dict[int, tuple]]:
    """Joints, parts, landmark targets and joint placements of the body with proportions ``p``.

    Returns:
        joints: (24, 3) float64 rest joints, metres (soles at y = 0, before the stature scale).
        parts: the 16 parts.
        landmarks: vertex-joint name -> (3,) target point, metres.
        joint_on_part: joint index -> (part name, axial position s along that part, metres).
    """
    hip_y = 0.87 * p.leg
    neck_y = hip_y + 0.57 * p.torso

    def yt(y):  # torso region, adult coordinate -> this body
        return hip_y + (y - 0.87) * p.torso

    def yh(y):  # head region
        return neck_y + (y - 1.44) * p.head

    hx, sw, g, arm = 0.09 * p.hip_width, 0.18 * p.shoulder_width, p.girth, p.arm
    arm_y = yt(1.39)
    J = np.zeros((24, 3))
    J[0] = (0, yt(0.93), 0)
    J[3] = (0, yt(1.04), 0)
    J[6] = (0, yt(1.17), 0)
    J[9] = (0, yt(1.23), 0)
    J[12] = (0, neck_y, 0)
    J[15] = (0, yh(1.52), 0)
    side_joints = {  # left joint index -> adult-derived position (x for the left side)
        1: (hx, hip_y, 0),
        4: (1.1 * hx, 0.48 * p.leg, 0),
        7: (1.15 * hx, 0.08 * p.leg, -0.02 * p.foot),
        10: (1.15 * hx, 0.042 * g, 0.12 * p.foot),
        13: (0.075 * p.shoulder_width, arm_y, 0),
        16: (sw, arm_y, 0),
        18: (sw + 0.26 * arm, arm_y, 0),
        20: (sw + 0.505 * arm, arm_y, 0),
        22: (sw + 0.59 * arm, arm_y, 0),
    }
    for left, (x, y, z) in side_joints.items():
        J[left] = (x, y, z)
        J[left + 1] = (-x, y, z)
    fingertip_x = sw + 0.695 * arm

    td, tw = p.torso_depth, p.torso_width
    parts = [
        _Part("pelvis", (0, yt(0.86), 0), (0, yt(1.00), 0), 0.07 * p.torso, 0.06 * p.torso,
              0.16 * tw, 0.15 * tw, 0.11 * td / (0.16 * tw), (1, 0, 0), (0, 1, 2, 3), (40, 7, 6)),
        _Part("abdomen", (0, yt(0.98), 0), (0, yt(1.20), 0), 0.05 * p.torso, 0.05 * p.torso,
              0.14 * tw, 0.145 * tw, 0.105 * td / (0.14 * tw), (1, 0, 0), (0, 3, 6), (40, 6, 8)),
        _Part("chest", (0, yt(1.14), 0), (0, yt(1.35), 0), 0.06 * p.torso, 0.07 * p.torso,
              0.15 * tw, 0.17 * tw, 0.11 * td / (0.16 * tw), (1, 0, 0), (3, 6, 9, 13, 14), (40, 7, 8)),
        _Part("neck", (0, yt(1.36), -0.01), (0, yh(1.50), -0.005), 0.03 * g, 0.03 * g,
              0.055 * g, 0.05 * g, 0.95, (1, 0, 0), (9, 12, 15), (20, 4, 5)),
        _Part("head", (0, yh(1.585), 0.01), (0, yh(1.585), 0.01), 0.115 * p.head, 0.115 * p.head,
              0.08 * p.head, 0.08 * p.head, 0.095 / 0.08, (1, 0, 0), (12, 15), (36, 14, 0)),
    ]  # fmt: skip
    for sign, prefix in ((1, "l"), (-1, "r")):
        j = {k: J[k if sign > 0 else k + 1] for k in side_joints}
        foot_r = 0.045 * g
        foot_rv = 0.042 * g  # vertical radius: the sole touches y = 0
        parts += [
            _Part(f"{prefix}_shoulder", (sign * 0.03, yt(1.385), 0), tuple(j[16]), 0.055 * g, 0.055 * g,
                  0.06 * g, 0.052 * g, 0.9, (0, 1, 0), (9, 13 if sign > 0 else 14, 16 if sign > 0 else 17),
                  (20, 5, 5)),
            _Part(f"{prefix}_upper_arm", tuple(j[16]), tuple(j[18]), 0.05 * g, 0.042 * g, 0.05 * g, 0.042 * g,
                  1.0, (0, 1, 0), _side((13, 16, 18), sign), (20, 5, 10)),
            _Part(f"{prefix}_forearm", tuple(j[18]), tuple(j[20]), 0.041 * g, 0.031 * g, 0.041 * g,
                  0.031 * g, 1.0, (0, 1, 0), _side((16, 18, 20), sign), (18, 5, 10)),
            _Part(f"{prefix}_hand", (sign * (j[20][0] * sign + 0.02 * arm), arm_y, 0),
                  (sign * (fingertip_x - 0.035 * arm), arm_y, 0), 0.02 * arm, 0.035 * arm, 0.042 * g,
                  0.04 * g, 0.5, (0, 0, 1), _side((18, 20, 22), sign), (16, 5, 6)),
            _Part(f"{prefix}_thigh", tuple(j[1]), tuple(j[4]), 0.085 * g, 0.055 * g, 0.085 * g, 0.055 * g,
                  1.0, (1, 0, 0), _side((0, 1, 4), sign), (22, 5, 12)),
            _Part(f"{prefix}_shin", tuple(j[4]), tuple(j[7]), 0.053 * g, 0.037 * g, 0.053 * g, 0.037 * g,
                  1.0, (1, 0, 0), _side((1, 4, 7), sign), (20, 5, 12)),
            _Part(f"{prefix}_foot", (j[7][0], foot_rv, -0.05 * p.foot), (j[7][0], foot_rv, 0.14 * p.foot),
                  0.05 * p.foot, 0.06 * p.foot, foot_r, foot_r, foot_rv / foot_r, (1, 0, 0),
                  _side((4, 7, 10), sign), (18, 5, 8)),
        ]  # fmt: skip

    head_c = np.array([0, yh(1.585), 0.01])
    landmarks = {
        "nose": head_c + (0, -0.03 * p.head, 0.1 * p.head),
        "reye": head_c + (-0.032 * p.head, 0.015 * p.head, 0.09 * p.head),
        "leye": head_c + (0.032 * p.head, 0.015 * p.head, 0.09 * p.head),
        "rear": head_c + (-0.08 * p.head, 0, 0),
        "lear": head_c + (0.08 * p.head, 0, 0),
    }
    for sign, prefix, cap in ((1, "L", "l"), (-1, "R", "r")):
        ax = J[7 if sign > 0 else 8][0]
        landmarks[f"{prefix}BigToe"] = np.array([ax - sign * 0.02 * g, 0.02 * g, 0.2 * p.foot])
        landmarks[f"{prefix}SmallToe"] = np.array([ax + sign * 0.03 * g, 0.02 * g, 0.17 * p.foot])
        landmarks[f"{prefix}Heel"] = np.array([ax, 0.01 * g, -0.1 * p.foot])
        for name, z in zip(("thumb", "index", "middle", "ring", "pinky"), (0.04, 0.025, 0.0, -0.02, -0.035)):
            tip_x = fingertip_x - (0.03 if name in ("thumb", "pinky") else 0.0) * arm
            landmarks[f"{cap}{name}"] = np.array([sign * tip_x, arm_y, z * g])

    placements = {0: ("pelvis", yt(0.93) - yt(0.86)), 3: ("abdomen", yt(1.04) - yt(0.98)),
                  6: ("abdomen", yt(1.17) - yt(0.98)), 9: ("chest", yt(1.23) - yt(1.14)),
                  12: ("neck", neck_y - yt(1.36)), 15: ("head", yh(1.52) - yh(1.585))}  # fmt: skip
    for sign, prefix in ((1, "l"), (-1, "r")):
        o = 0 if sign > 0 else 1
        placements.update({
            1 + o: (f"{prefix}_thigh", 0.0), 4 + o: (f"{prefix}_shin", 0.0), 7 + o: (f"{prefix}_shin", None),
            10 + o: (f"{prefix}_foot", 0.17 * p.foot),
            13 + o: (f"{prefix}_shoulder", 0.075 * p.shoulder_width - 0.03),
            16 + o: (f"{prefix}_upper_arm", 0.0), 18 + o: (f"{prefix}_forearm", 0.0),
            20 + o: (f"{prefix}_forearm", None), 22 + o: (f"{prefix}_hand", 0.065 * arm),
        })  # fmt: skip
    return J, parts, landmarks, placements


def _side(left_joints: tuple, sign: int) -> tuple:
    """Map left-side SMPL joint indices to the right side (odd/even pairs) when ``sign < 0``."""
    pairs = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23}
    return tuple(pairs.get(j, j) if sign < 0 else j for j in left_joints)


# ------------------------------------------------------------------------------------------------------
# Tube meshing: topology depends only on the ring/segment counts, positions on the proportions.


def _part_frame(part: _Part) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
    start, end = np.asarray(part.start, float), np.asarray(part.end, float)
    length = float(np.linalg.norm(end - start))
    d = (end - start) / length if length > 1e-9 else np.asarray(part.axis, float)
    e1 = np.asarray(part.e1, float)
    e1 = e1 - (e1 @ d) * d
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    return start, length, d, e1, e2


def _rings(part: _Part, n_cap: int, n_mid: int) -> tuple[np.ndarray, np.ndarray]:
    """Axial positions s (R,) and e1-radii r (R,) of the rings of one part, from start pole to end pole."""
    _, length, _, _, _ = _part_frame(part)
    alpha = 0.5 * np.pi * np.arange(1, n_cap + 1) / n_cap  # cap A: pole side -> equator
    s = [-part.cap_start * np.cos(alpha)]
    r = [part.radius_start * np.sin(alpha)]
    if length > 1e-9:
        t = np.arange(1, n_mid) / n_mid
        s.append(length * t)
        r.append(part.radius_start + (part.radius_end - part.radius_start) * t)
        alpha_b = 0.5 * np.pi * (n_cap - np.arange(0, n_cap)) / n_cap  # equator -> pole side
    else:
        alpha_b = 0.5 * np.pi * (n_cap - np.arange(1, n_cap)) / n_cap  # skip the shared equator
    s.append(length + part.cap_end * np.cos(alpha_b))
    r.append(part.radius_end * np.sin(alpha_b))
    return np.concatenate(s), np.concatenate(r)


def _part_positions(part: _Part, counts: tuple[int, int, int]) -> np.ndarray:
    """(2 + R * n_seg, 3) vertex positions of a part: start pole, rings (R of n_seg), end pole."""
    n_seg, n_cap, n_mid = counts
    start, length, d, e1, e2 = _part_frame(part)
    s, r = _rings(part, n_cap, n_mid)
    theta = 2 * np.pi * np.arange(n_seg) / n_seg
    cross = np.cos(theta)[:, None] * e1 + part.aspect * np.sin(theta)[:, None] * e2  # (n_seg, 3)
    rings = start + s[:, None, None] * d + r[:, None, None] * cross[None]  # (R, n_seg, 3)
    poles = [start - part.cap_start * d, start + (length + part.cap_end) * d]
    return np.concatenate([poles[0][None], rings.reshape(-1, 3), poles[1][None]])


def _part_faces(num_rings: int, n_seg: int) -> np.ndarray:
    """(2 * n_seg * num_rings, 3) faces of a tube with ``num_rings`` rings and two poles (local indices)."""
    ring = lambda k, i: 1 + k * n_seg + (i % n_seg)  # noqa: E731
    last = 1 + num_rings * n_seg
    faces = []
    for i in range(n_seg):
        faces.append((0, ring(0, i + 1), ring(0, i)))
        faces.append((last, ring(num_rings - 1, i), ring(num_rings - 1, i + 1)))
        for k in range(num_rings - 1):
            a, b = ring(k, i), ring(k, i + 1)
            c, e = ring(k + 1, i + 1), ring(k + 1, i)
            faces += [(a, b, c), (a, c, e)]
    return np.asarray(faces, np.int64)


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


@dataclass
class _Topology:
    """Everything about the mesh that does not depend on the proportions."""

    counts: list  # per part (n_seg, n_cap, n_mid)
    part_offsets: list  # first vertex of each part
    num_base: int  # vertices before centroid splits
    faces: np.ndarray  # (F, 3) int64, outward counter-clockwise, over all (split) vertices
    splits: np.ndarray  # (S, 3) int64: vertex num_base + i = centroid of these three vertices


def _counts(part: _Part, q: float) -> tuple[int, int, int]:
    n_seg, n_cap, n_mid = part.resolution
    return (max(8, round(n_seg * q)), max(2, round(n_cap * q)), 0 if n_mid == 0 else max(1, round(n_mid * q)))


def _num_part_vertices(part: _Part, counts: tuple[int, int, int]) -> int:
    n_seg, n_cap, n_mid = counts
    return 2 + len(_rings(part, n_cap, n_mid)[0]) * n_seg


def _build_topology(parts: list[_Part], num_vertices: int) -> _Topology:
    """Choose ring counts so the tubes have <= num_vertices vertices, then split faces up to exactly V."""
    total = lambda q: sum(_num_part_vertices(p, _counts(p, q)) for p in parts)  # noqa: E731
    min_vertices = total(0.0)
    if num_vertices < min_vertices:
        raise ValueError(
            f"[body.synthetic] num_vertices={num_vertices} is too small: the synthetic body needs at least "
            f"{min_vertices} vertices (use 6890, SMPL's count, or any value >= {min_vertices})"
        )
    lo, hi = 0.0, 4.0
    while total(hi) <= num_vertices:
        hi *= 2
    for _ in range(40):  # largest q with total(q) <= V
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if total(mid) <= num_vertices else (lo, mid)
    counts = [_counts(p, lo) for p in parts]

    faces, offsets, verts, offset = [], [], [], 0
    for part, c in zip(parts, counts):
        pos = _part_positions(part, c)
        f = _part_faces((len(pos) - 2) // c[0], c[0])
        if _signed_volume(pos, f) < 0:  # make the winding counter-clockwise seen from outside
            f = f[:, ::-1]
        faces.append(f + offset)
        offsets.append(offset)
        verts.append(pos)
        offset += len(pos)
    faces = np.concatenate(faces)
    verts = np.concatenate(verts)

    # Centroid splits of the largest faces (1 vertex -> 3 faces) until exactly V vertices; closed and
    # consistently oriented by construction. Deterministic: stable sort by area, ties by face index.
    splits = []
    while len(verts) < num_vertices:
        a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
        area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
        n = min(num_vertices - len(verts), max(1, len(faces) // 4))
        chosen = np.sort(np.argsort(-area, kind="stable")[:n])
        new_ids = len(verts) + np.arange(n)
        tri = faces[chosen]
        splits.append(tri)
        verts = np.concatenate([verts, (a[chosen] + b[chosen] + c[chosen]) / 3.0])
        keep = np.ones(len(faces), bool)
        keep[chosen] = False
        i, j, k = tri.T
        faces = np.concatenate(
            [
                faces[keep],
                np.stack([i, j, new_ids], 1),
                np.stack([j, k, new_ids], 1),
                np.stack([k, i, new_ids], 1),
            ]
        )
    splits = np.concatenate(splits) if splits else np.zeros((0, 3), np.int64)
    return _Topology(counts, offsets, offset, faces, splits)


def _positions(parts: list[_Part], topo: _Topology) -> np.ndarray:
    """(V, 3) float64 vertex positions of the body for this layout and topology."""
    base = np.concatenate([_part_positions(p, c) for p, c in zip(parts, topo.counts)])
    verts = np.empty((topo.num_base + len(topo.splits), 3))
    verts[: topo.num_base] = base
    for n, tri in enumerate(topo.splits):  # sequential: later splits may use earlier new vertices
        verts[topo.num_base + n] = verts[tri].mean(0)
    return verts


def _body(p: _Proportions, topo: _Topology) -> np.ndarray:
    """(V, 3) vertices of a body with proportions ``p`` (soles at y = 0, stature scale applied)."""
    _, parts, _, _ = _layout(p)
    verts = _positions(parts, topo)
    return verts * np.array([1 + 0.5 * (p.stature - 1), p.stature, 1 + 0.5 * (p.stature - 1)])


# ------------------------------------------------------------------------------------------------------
# Rigging: joint regressor, skinning weights, vertex joints.


def _part_of_vertex(topo: _Topology) -> np.ndarray:
    """(V,) index of the part each vertex belongs to."""
    part = np.searchsorted(np.asarray(topo.part_offsets), np.arange(topo.num_base), side="right") - 1
    out = np.concatenate([part, np.zeros(len(topo.splits), np.int64)])
    for n, tri in enumerate(topo.splits):
        out[topo.num_base + n] = out[tri[0]]
    return out


def _joint_regressor(parts: list[_Part], topo: _Topology, placements: dict, num_vertices: int) -> np.ndarray:
    """(24, V) rows of non-negative weights summing to 1: a blend of the two rings around each joint."""
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
    """Bone segments (24, 3) starts and (24, 3) ends: joint -> its main child (or a leaf end point)."""
    child = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 12: 15, 13: 16, 14: 17, 16: 18,
             17: 19, 18: 20, 19: 21, 20: 22, 21: 23}  # fmt: skip
    end = np.array([joints[child[j]] if j in child else ends[j] for j in range(24)])
    return joints.copy(), end


def _skinning_weights(verts: np.ndarray, part_of: np.ndarray, parts: list[_Part], joints: np.ndarray,
                      leaf_ends: dict[int, np.ndarray]) -> np.ndarray:  # fmt: skip
    """(V, 24) skinning weights: soft-min of the distance to the bones allowed for the vertex's part."""
    start, end = _bones(joints, leaf_ends)
    seg = end - start  # (24, 3)
    t = np.einsum("vjc,jc->vj", verts[:, None] - start[None], seg) / np.maximum((seg**2).sum(1), 1e-12)
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
    """(21,) distinct vertex indices nearest to each landmark, searched within the landmark's body part."""
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
    """(V, 3, 207) small random pose correctives on the vertices around each of joints 1..23, else 0."""
    V = len(weights)
    posedirs = np.zeros((V, 3, NUM_POSE_FEATURES))
    for joint in range(1, 24):
        near = (weights[:, joint] > 0.2) & (weights[:, joint] < 0.8)
        block = slice(9 * (joint - 1), 9 * joint)
        posedirs[near, :, block] = rng.normal(0.0, 0.0015, size=(int(near.sum()), 3, 9))
    return posedirs


# ------------------------------------------------------------------------------------------------------


def synthetic_smpl_arrays(num_vertices: int = SMPL_NUM_VERTICES, seed: int = 0) -> dict[str, np.ndarray]:
    """Build the SYNTHETIC SMPL-format arrays in memory (see the module docstring; not a real body).

    Args:
        num_vertices: V, the exact vertex count (6890 = SMPL's; at least ~600).
        seed: seeds the pose correctives and the magnitudes of shape components 1-9.

    Returns:
        Dict of numpy arrays, canonical frame (y up, z front, x left), metres, centred on the vertex mean:
        ``v_template`` (V, 3) float64, ``f`` (F, 3) int64 (counter-clockwise from outside),
        ``J_regressor`` (24, V), ``weights`` (V, 24), ``kintree_table`` (2, 24) int64 (row 0 = parents,
        root -1), ``shapedirs`` (V, 3, 10), ``posedirs`` (V, 3, 207), ``kid_template`` (V, 3) (child body,
        same frame and offset), ``joint_vertex_ids`` (21,) int64 (spec order), ``synthetic`` () bool True,
        ``description`` () str.
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
    shapedirs[:, :, 0] = _body(dataclasses.replace(_ADULT, stature=1 + _STATURE_STEP), topo) - verts
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

    The humanoid is described in the module docstring: ~1.70 m T-pose, y up, 24 rigged joints, 10 shape
    components (component 0: +6 cm height per unit), optional ~1.10 m kid template.

    Args:
        path: output file; ``.npz`` (plain arrays, ``np.load``-able without pickle) or ``.pkl`` (a pickle of a
            dict of plain numpy arrays, as smplx expects of an SMPL ``.pkl``). Parent folders are created.
        num_vertices: V, exact vertex count. 6890 (SMPL's) also puts the 21 vertex joints at smplx's default
            indices; other values need the stored ``joint_vertex_ids`` (SMPLBody reads them).
        seed: makes the file deterministic; different seeds change the pose correctives and the magnitudes of
            shape components 1-9 only.
        kid_template_path: if given, also write the (V, 3) float64 child template (metres, same canonical
            frame) there as ``.npy``, for SMPL-A's kid blend.

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
