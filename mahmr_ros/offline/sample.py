"""The bundled sample frame: three Anny people rendered into a simple room, with exact ground
truth.

No photo in an installed wheel shows several full-body people (matplotlib's ``grace_hopper.jpg`` is
a public- domain head-and-shoulders portrait), so the sample is a synthetic render made at setup
time from the CC0 Anny body model: an adult (age phenotype 0.62), a smaller adult (0.48) and a
child (0.22, about 8 years), standing on the floor 3.2-5.0 m from a 640x480 camera with a 60 degree
horizontal FoV, held 1.2 m above the floor. The render is a painter's-algorithm rasteriser (OpenCV
polygons, Lambert shading, 2x supersampling) with clothes coloured by skinning bone.
``sample_truth()`` returns each person's true height, pelvis and depth, which the tests and
``benchmarks/bench_offline.py`` compare against.

``sample_frame()`` caches the PNG and K under the assets folder (``build/offline``) and reloads
them after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np

from mahmr_ros.geometry import project
from mahmr_ros.offline.anny_body import STANDING_POSE
from mahmr_ros.offline.assets import assets_dir
from mahmr_ros.offline.place import assumed_K

#: People in the bundled sample (all fully visible, none occluding another).
SAMPLE_PEOPLE = 3
SAMPLE_SIZE_WH = (640, 480)
SAMPLE_HFOV_DEG = 60.0
CAMERA_HEIGHT_M = 1.2
SAMPLE_SOURCE = (
    "synthetic render made at setup by mahmr_ros.offline.sample from the Anny body model "
    "(anny 0.6.2: code Apache-2.0, MakeHuman-derived data CC0)"
)


@dataclass(frozen=True)
class ScenePerson:
    """One rendered person: Anny age phenotype, pelvis position on the floor, yaw and clothes
    colours."""

    age: float  # Anny age phenotype
    x_m: float  # lateral position of the pelvis, camera frame
    z_m: float  # depth of the pelvis, camera frame
    yaw_deg: float  # rotation about the vertical axis (0 = facing the camera)
    shirt_bgr: tuple[int, int, int]
    trousers_bgr: tuple[int, int, int]


_PEOPLE = (
    ScenePerson(0.62, -0.95, 4.0, 15.0, (60, 60, 170), (70, 50, 40)),
    ScenePerson(0.48, 0.85, 5.0, -20.0, (150, 110, 40), (40, 40, 40)),
    ScenePerson(0.22, 0.05, 3.2, 5.0, (60, 150, 60), (120, 80, 50)),
)
_SKIN_BGR = (120, 160, 215)
_HAIR_BGR = (30, 40, 60)
_SHOES_BGR = (25, 25, 25)
# Relaxed standing pose (local-ref axis-angle, radians) per FIT_BONES name: arms down, slight elbow
# bend.
_POSE = STANDING_POSE


#: Bump when the scene or the renderer changes: a cached sample of another version is rendered
#: again.
SAMPLE_VERSION = 1


def _truth_is_current(truth) -> bool:
    try:
        return json.loads(truth.read_text()).get("version") == SAMPLE_VERSION
    except (OSError, ValueError):
        return False


def sample_path():
    return assets_dir() / "sample_people3.png"


def _truth_path():
    return assets_dir() / "sample_people3.json"


def sample_frame(rebuild: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample image and its intrinsics (rendered once, then loaded from the cache).

    Returns:
        image_bgr: (480, 640, 3) uint8 BGR with :data:`SAMPLE_PEOPLE` people.
        K: (3, 3) float64 intrinsics, pixels (60 degree horizontal FoV, centred principal point).
    """
    path, truth = sample_path(), _truth_path()
    if rebuild or not path.is_file() or not _truth_is_current(truth):
        image, info = render_sample()
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
        truth.write_text(json.dumps(info, indent=1))
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"[offline] cannot read the sample image {path}; delete it and rerun")
    return image, np.asarray(json.loads(truth.read_text())["K"], dtype=np.float64)


def load_sample(rebuild: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """The bundled, licence-clean sample for demos and tests (what ``make demo`` shows).

    Returns:
        image_bgr: (480, 640, 3) uint8 BGR, a synthetic render of :data:`SAMPLE_PEOPLE` Anny
            people.
        K: (3, 3) float64 intrinsics of the render, pixels.
        info: ``source`` (where the pixels come from and their licence), ``num_people`` and
            ``people`` (ground truth, see :func:`sample_truth`).
    """
    image, K = sample_frame(rebuild=rebuild)
    info = json.loads(_truth_path().read_text())
    return (
        image,
        K,
        {"source": info["source"], "num_people": len(info["people"]), "people": info["people"]},
    )


def sample_truth() -> list[dict]:
    """Ground truth of the sample's people, left to right in the image.

    Returns:
        One dict per person: ``height_m`` (T-pose height), ``pelvis_cam`` (3,) m, ``bbox_xyxy``
        (4,) px, ``age`` (Anny phenotype), ``is_child``.
    """
    sample_frame()
    return json.loads(_truth_path().read_text())["people"]


def _vertex_colors(body, vertices_rest: np.ndarray, person: ScenePerson) -> np.ndarray:
    """(V, 3) uint8 BGR clothes colours from each vertex's dominant skinning bone."""
    model = body.model
    labels = list(model.bone_labels)
    idx = model.vertex_bone_indices.numpy()
    w = model.vertex_bone_weights.numpy()
    dominant = np.array(labels)[idx[np.arange(len(idx)), w.argmax(1)]]
    colors = np.tile(np.array(person.shirt_bgr, np.uint8), (len(dominant), 1))

    def has(*parts):
        return np.array([any(p in name for p in parts) for name in dominant])

    colors[has("pelvis", "upperleg", "lowerleg", "root")] = person.trousers_bgr
    colors[has("foot", "toe")] = _SHOES_BGR
    colors[has("lowerarm02", "wrist", "finger", "metacarpal")] = _SKIN_BGR
    head = has("neck", "head", "eye")
    colors[head] = _SKIN_BGR
    z, y = vertices_rest[:, 2], vertices_rest[:, 1]
    top = z[head].max()
    scalp = head & (
        (z > top - 0.08 * (top - z.min()) / 1.7 * 1.3) | ((y > 0.02) & (z > top - 0.2))
    )
    colors[scalp] = _HAIR_BGR
    return colors


def _background(w: int, h: int, horizon_px: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.float32)
    rows = np.arange(h, dtype=np.float32)[:, None]
    wall = np.array([200, 210, 215], np.float32) - 0.05 * rows
    floor = np.array([110, 130, 150], np.float32) + 0.15 * (rows - horizon_px)
    img[:] = np.where(rows[..., None] < horizon_px, wall[:, None, :], floor[:, None, :])
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def render_mesh_painter(
    image: np.ndarray,
    vertices_cam: np.ndarray,
    faces: np.ndarray,
    colors_bgr: np.ndarray,
    K: np.ndarray,
) -> np.ndarray:
    """Draw meshes over ``image`` far to near with Lambert shading (no z-buffer: painter's
    algorithm).

    Args:
        image: (H, W, 3) uint8 BGR, drawn into (a copy is returned).
        vertices_cam: (V, 3) metres, camera frame, all z > 0.
        faces: (F, 3) vertex indices, counter-clockwise seen from outside.
        colors_bgr: (V, 3) uint8 per-vertex base colours (each face takes its first vertex's
            colour).
        K: (3, 3) intrinsics of ``image``, pixels.

    Returns:
        (H, W, 3) uint8 BGR.
    """
    out = image.copy()
    tri = vertices_cam[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    centre = tri.mean(1)
    facing = (
        np.einsum("fi,fi->f", normal, centre) < 0
    )  # back-face culling (normal points to the camera)
    light = np.array([-0.4, -0.6, -0.7])
    light /= np.linalg.norm(light)
    shade = 0.45 + 0.55 * np.clip(normal @ light, 0, 1)
    color = colors_bgr[faces[:, 0]].astype(np.float32) * shade[:, None]
    uv = project(tri, K)  # (F, 3, 2)
    order = np.argsort(-centre[:, 2])
    shift = 4
    pts = np.round(uv * (1 << shift)).astype(np.int32)
    for f in order:
        if facing[f]:
            cv2.fillConvexPoly(out, pts[f], color[f].tolist(), lineType=cv2.LINE_8, shift=shift)
    return out


def render_sample(
    supersample: int = 2,
    people: tuple[ScenePerson, ...] | None = None,
    body=None,
    camera_pitch_deg: float = 0.0,
    camera_height_m: float = CAMERA_HEIGHT_M,
    pose: dict | None = None,
):
    """Render a scene of Anny people (slow: ~1-3 s per call).

    Args:
        supersample: render at this many times the resolution, then downscale (anti-aliasing).
        people: the people to render; default the bundled sample's (:data:`_PEOPLE`). Tests and
            ``benchmarks/bench_offline.py`` render other ages and distances through this.
        body: an :class:`~mahmr_ros.offline.anny_body.AnnyBody` to reuse (building one costs ~1 s).
        camera_pitch_deg: the camera looks this many degrees down (0 = level, the bundled sample).
            People stand at ``x_m``, ``z_m`` of the level frame; the ground truth is in the tilted
            camera frame.
        camera_height_m: height of the camera above the floor, metres (default the sample's 1.2 m).
        pose: local-ref axis-angle (radians) per :data:`~mahmr_ros.offline.anny_body.FIT_BONES`
            name for everyone; default a relaxed standing pose (arms down).

    Returns:
        (H, W, 3) uint8 BGR image and its ground-truth dict (``K``, ``people``, ``source``,
        ``version``).
    """
    import torch

    from mahmr_ros.offline.anny_body import FIT_BONES, AnnyBody, joints_from_keypoints

    people_in = _PEOPLE if people is None else tuple(people)
    body = AnnyBody(age_grid_size=5) if body is None else body
    w, h = SAMPLE_SIZE_WH
    K = assumed_K(w, h, SAMPLE_HFOV_DEG)
    S = np.diag([supersample, supersample, 1.0])
    K_big = S @ K
    K_big[:2, 2] = (K[:2, 2] + 0.5) * supersample - 0.5
    c, s = np.cos(np.radians(camera_pitch_deg)), np.sin(np.radians(camera_pitch_deg))
    R_pitch = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])  # level frame -> tilted camera frame
    horizon = K_big[1, 2] - K_big[1, 1] * s / c  # a level ray's image row
    image = _background(w * supersample, h * supersample, horizon).astype(np.uint8)
    aa = torch.zeros(len(people_in), len(FIT_BONES), 3, dtype=torch.float64)
    for name, value in (_POSE if pose is None else pose).items():
        aa[:, FIT_BONES.index(name)] = torch.tensor(value, dtype=torch.float64)
    ages = torch.tensor([p.age for p in people_in], dtype=torch.float64)
    out = body.forward_full(aa, ages)
    people = []
    meshes = []
    for i, person in enumerate(people_in):
        yaw = np.radians(person.yaw_deg)
        # Anny frame (x body-left, y back, z up) -> camera frame for a person facing the camera,
        # then yaw
        R_face = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
        R_yaw = np.array(
            [[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]]
        )
        R = R_yaw @ R_face
        verts = out["vertices"][i].numpy() @ R.T
        kps = out["keypoints"][i].numpy() @ R.T
        pelvis = joints_from_keypoints(kps)[0]
        # pelvis at (x, z) on the ground plane, feet on the floor camera_height_m below the camera
        target = np.array([person.x_m, camera_height_m - verts[:, 1].max(), person.z_m])
        t = target - np.array([pelvis[0], 0, pelvis[2]])
        verts = (verts + t) @ R_pitch.T
        pelvis_cam = R_pitch @ (pelvis + t)
        meshes.append((verts, _vertex_colors(body, out["rest_vertices"][i].numpy(), person)))
        uv = project(verts, K)
        people.append(
            {
                "age": person.age,
                "height_m": float(out["height_m"][i]),
                "is_child": bool(out["height_m"][i] < 1.40),
                "pelvis_cam": pelvis_cam.tolist(),
                "transl_cam": (R_pitch @ t).tolist(),
                "R_cam_anny": (R_pitch @ R).tolist(),
                "keypoints_cam": ((kps + t) @ R_pitch.T).tolist(),
                "bbox_xyxy": [*uv.min(0).tolist(), *uv.max(0).tolist()],
            }
        )
    # One painter pass over all people, so nearer people cover farther ones.
    verts = np.concatenate([m[0] for m in meshes])
    colors = np.concatenate([m[1] for m in meshes])
    nv = body.num_vertices
    faces = np.concatenate([body.faces.astype(np.int64) + i * nv for i in range(len(meshes))])
    image = render_mesh_painter(image, verts, faces, colors, K_big)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    people.sort(key=lambda p: p["bbox_xyxy"][0])
    return image, {
        "K": K.tolist(),
        "people": people,
        "source": SAMPLE_SOURCE,
        "version": SAMPLE_VERSION,
    }
