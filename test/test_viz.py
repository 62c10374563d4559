"""Overlay and scene export on a simple quad 'person'."""

import numpy as np
import pytest
import trimesh

from mahmr_ros.types import HumanEstimate
from mahmr_ros.viz import render_overlay, save_scene, track_color

K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
FACES = np.array([[0, 1, 2], [0, 2, 3]])


def person(cx_m: float, z_m: float, track_id: str) -> HumanEstimate:
    v = np.array([[-0.2, -0.5, 0], [0.2, -0.5, 0], [0.2, 0.5, 0], [-0.2, 0.5, 0]], np.float32) + [
        cx_m,
        0,
        z_m,
    ]
    return HumanEstimate(
        score=1,
        bbox_xyxy=np.zeros(4),
        rotmats=np.eye(3)[None],
        betas=np.zeros(11),
        transl=[cx_m, 0, z_m],
        vertices=v,
        joints=v[:1],
        focal=[500, 500],
        principal_point=[320, 240],
        height_m=1.0,
        is_child=False,
        track_id=track_id,
    )


def test_overlay_colours_covered_pixels_only_and_per_track():
    image = np.full((480, 640, 3), 40, np.uint8)
    humans = [person(-0.5, 3.0, "b1"), person(0.5, 3.0, "b2")]
    out = render_overlay(image, humans, FACES, K, alpha=1.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[0, 0] == 40).all()  # background untouched
    left, right = out[240, 320 - 83], out[240, 320 + 83]
    # Facing the camera: shade ~1 at the centre, so the colour is the track colour.
    np.testing.assert_allclose(left, track_color("b1"), atol=8)
    np.testing.assert_allclose(right, track_color("b2"), atol=8)
    assert track_color("b1") == track_color("b1") and track_color("b1") != track_color("b2")
    half = render_overlay(image, humans, FACES, K, alpha=0.5)
    np.testing.assert_allclose(half[240, 237].astype(float), (40 + left.astype(float)) / 2, atol=2)


def test_overlay_defaults_to_person_camera_and_rejects_bad_image():
    image = np.zeros((480, 640, 3), np.uint8)
    out = render_overlay(image, [person(0, 3, "x")], FACES)
    assert out[240, 320].any()
    with pytest.raises(ValueError, match="uint8"):
        render_overlay(image.astype(np.float32), [], FACES)


@pytest.mark.parametrize("suffix", [".glb", ".ply"])
def test_save_scene_round_trips_geometry(tmp_path, suffix):
    humans = [person(-0.5, 3.0, "b1"), person(0.5, 3.0, "b2")]
    path = save_scene(tmp_path / f"scene{suffix}", humans, FACES)
    loaded = trimesh.load(path, force="mesh", process=False)
    assert len(loaded.faces) == 4
    np.testing.assert_allclose(
        sorted(loaded.vertices[:, 0]),
        sorted(np.r_[humans[0].vertices[:, 0], humans[1].vertices[:, 0]]),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match=".glb"):
        save_scene(tmp_path / "scene.obj", humans, FACES)
