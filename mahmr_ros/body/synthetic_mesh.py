"""Geometry of the SYNTHETIC SMPL-format body (``synthetic.py``): proportions, the 16 body parts as
closed tubes in SMPL's canonical T-pose (y up, z out of the body front, x to the body's left,
metres), and their meshing into one watertight, outward-oriented mesh with an exact vertex count.
Invented from first principles; none of it is derived from SMPL data. Rigging (joint regressor,
skinning, pose correctives) lives in ``synthetic.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def _layout(
    p: _Proportions,
) -> tuple[np.ndarray, list[_Part], dict[str, np.ndarray], dict[int, tuple]]:
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
              0.15 * tw, 0.17 * tw, 0.11 * td / (0.16 * tw), (1, 0, 0), (3, 6, 9, 13, 14),
              (40, 7, 8)),
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
            _Part(f"{prefix}_shoulder", (sign * 0.03, yt(1.385), 0), tuple(j[16]), 0.055 * g,
                  0.055 * g, 0.06 * g, 0.052 * g, 0.9, (0, 1, 0),
                  (9, 13 if sign > 0 else 14, 16 if sign > 0 else 17), (20, 5, 5)),
            _Part(f"{prefix}_upper_arm", tuple(j[16]), tuple(j[18]), 0.05 * g, 0.042 * g, 0.05 * g,
                  0.042 * g, 1.0, (0, 1, 0), _side((13, 16, 18), sign), (20, 5, 10)),
            _Part(f"{prefix}_forearm", tuple(j[18]), tuple(j[20]), 0.041 * g, 0.031 * g, 0.041 * g,
                  0.031 * g, 1.0, (0, 1, 0), _side((16, 18, 20), sign), (18, 5, 10)),
            _Part(f"{prefix}_hand", (sign * (j[20][0] * sign + 0.02 * arm), arm_y, 0),
                  (sign * (fingertip_x - 0.035 * arm), arm_y, 0), 0.02 * arm, 0.035 * arm,
                  0.042 * g, 0.04 * g, 0.5, (0, 0, 1), _side((18, 20, 22), sign), (16, 5, 6)),
            _Part(f"{prefix}_thigh", tuple(j[1]), tuple(j[4]), 0.085 * g, 0.055 * g, 0.085 * g,
                  0.055 * g, 1.0, (1, 0, 0), _side((0, 1, 4), sign), (22, 5, 12)),
            _Part(f"{prefix}_shin", tuple(j[4]), tuple(j[7]), 0.053 * g, 0.037 * g, 0.053 * g,
                  0.037 * g, 1.0, (1, 0, 0), _side((1, 4, 7), sign), (20, 5, 12)),
            _Part(f"{prefix}_foot", (j[7][0], foot_rv, -0.05 * p.foot),
                  (j[7][0], foot_rv, 0.14 * p.foot), 0.05 * p.foot, 0.06 * p.foot, foot_r, foot_r,
                  foot_rv / foot_r, (1, 0, 0), _side((4, 7, 10), sign), (18, 5, 8)),
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
        for name, z in zip(
            ("thumb", "index", "middle", "ring", "pinky"), (0.04, 0.025, 0.0, -0.02, -0.035)
        ):
            tip_x = fingertip_x - (0.03 if name in ("thumb", "pinky") else 0.0) * arm
            landmarks[f"{cap}{name}"] = np.array([sign * tip_x, arm_y, z * g])

    placements = {0: ("pelvis", yt(0.93) - yt(0.86)), 3: ("abdomen", yt(1.04) - yt(0.98)),
                  6: ("abdomen", yt(1.17) - yt(0.98)), 9: ("chest", yt(1.23) - yt(1.14)),
                  12: ("neck", neck_y - yt(1.36)), 15: ("head", yh(1.52) - yh(1.585))}  # fmt: skip
    for sign, prefix in ((1, "l"), (-1, "r")):
        o = 0 if sign > 0 else 1
        placements.update({
            1 + o: (f"{prefix}_thigh", 0.0), 4 + o: (f"{prefix}_shin", 0.0),
            7 + o: (f"{prefix}_shin", None), 10 + o: (f"{prefix}_foot", 0.17 * p.foot),
            13 + o: (f"{prefix}_shoulder", 0.075 * p.shoulder_width - 0.03),
            16 + o: (f"{prefix}_upper_arm", 0.0), 18 + o: (f"{prefix}_forearm", 0.0),
            20 + o: (f"{prefix}_forearm", None), 22 + o: (f"{prefix}_hand", 0.065 * arm),
        })  # fmt: skip
    return J, parts, landmarks, placements


def _side(left_joints: tuple, sign: int) -> tuple:
    """Map left-side SMPL joint indices to the right side (odd/even pairs) when ``sign < 0``."""
    pairs = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23}
    return tuple(pairs.get(j, j) if sign < 0 else j for j in left_joints)


# -------------------------------------------------------------------------------------------------
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
    """Axial positions s (R,) and e1-radii r (R,) of the rings of one part, from start pole to end
    pole."""
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
    """(2 * n_seg * num_rings, 3) faces of a tube with ``num_rings`` rings and two poles (local
    indices)."""
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
    return (
        max(8, round(n_seg * q)),
        max(2, round(n_cap * q)),
        0 if n_mid == 0 else max(1, round(n_mid * q)),
    )


def _num_part_vertices(part: _Part, counts: tuple[int, int, int]) -> int:
    n_seg, n_cap, n_mid = counts
    return 2 + len(_rings(part, n_cap, n_mid)[0]) * n_seg


def _build_topology(parts: list[_Part], num_vertices: int) -> _Topology:
    """Choose ring counts so the tubes have <= num_vertices vertices, then split faces up to
    exactly V."""
    total = lambda q: sum(_num_part_vertices(p, _counts(p, q)) for p in parts)  # noqa: E731
    min_vertices = total(0.0)
    if num_vertices < min_vertices:
        raise ValueError(
            f"[body.synthetic] num_vertices={num_vertices} is too small: the synthetic body needs "
            f"at least {min_vertices} vertices (use 6890, SMPL's count, or any value >= "
            f"{min_vertices})"
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

    # Centroid splits of the largest faces (1 vertex -> 3 faces) until exactly V vertices; closed
    # and consistently oriented by construction. Deterministic: stable sort by area, ties by face
    # index.
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


# -------------------------------------------------------------------------------------------------
# Rigging: joint regressor, skinning weights, vertex joints.


def _part_of_vertex(topo: _Topology) -> np.ndarray:
    """(V,) index of the part each vertex belongs to."""
    part = (
        np.searchsorted(np.asarray(topo.part_offsets), np.arange(topo.num_base), side="right") - 1
    )
    out = np.concatenate([part, np.zeros(len(topo.splits), np.int64)])
    for n, tri in enumerate(topo.splits):
        out[topo.num_base + n] = out[tri[0]]
    return out
