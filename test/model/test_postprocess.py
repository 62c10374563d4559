"""Postprocessing on hand-built raw outputs, so every number can be checked by hand."""

import math

import numpy as np
import pytest
import torch

from mahmr_ros.body import SMPLBody, make_synthetic_smpl
from mahmr_ros.model import postprocess, preprocess
from mahmr_ros.model.camera import project


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    root = tmp_path_factory.mktemp("smpl")
    return SMPLBody(
        make_synthetic_smpl(root / "smpl.npz", kid_template_path=root / "kid.npy"),
        root / "kid.npy",
    )


def _raw(body, confs, kid=(0.0, 0.0, 0.0)):
    """Network outputs for a 448 x 224 image at input_size 224 (r = 0.5, resized 224 x 112, f = 100
    px)."""
    Q = len(confs)
    f, h, w = 100.0, 112.0, 224.0
    rot = torch.eye(3).repeat(Q, 24, 1, 1)
    rot[:, 0] = torch.diag(
        torch.tensor([1.0, -1.0, -1.0])
    )  # standing, facing the camera (spec §8 #15)
    betas = torch.zeros(Q, 11)
    betas[:, 10] = torch.tensor(kid[:Q])
    transl = torch.tensor([[0.3 * i - 0.3, 0.2, 6.0 + i] for i in range(Q)])
    # Boxes (cx, cy, w, h) / 224 around each body's projected joints in the network camera.
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    _, joints = body.forward(rot, betas, transl)
    uv = (joints @ K.T)[..., :2] / (joints @ K.T)[..., 2:]
    lo, hi = uv.amin(1), uv.amax(1)
    boxes = torch.cat([(lo + hi) / 2, hi - lo], dim=1) / 224
    fov = 2 * math.atan(h / 2 / f)
    return {
        "pred_confs": torch.tensor([confs]),
        "pred_boxes": boxes[None],
        "pred_rotmats": rot[None],
        "pred_betas": betas[None],
        "pred_cam": torch.zeros(1, Q, 3),
        "pred_transl": transl[None],
        "pred_fov": torch.tensor([fov]),
        "pred_focal": torch.tensor([f]),
        "pred_intrinsics": K[None],
    }


def _meta():
    _, meta = preprocess(np.zeros((224, 448, 3), np.uint8), input_size=224)
    assert meta.scale == 0.5 and meta.resized_hw == (112, 224)
    return meta


def test_threshold_is_strict_and_sorts_by_confidence(body):
    raw = _raw(body, [0.3, 0.9, 0.31])
    humans = postprocess(raw, _meta(), conf_thresh=0.3, body=body)[0]
    assert [round(h.score, 2) for h in humans] == [0.9, 0.31]
    assert [h.extras["query"] for h in humans] == [1, 2]
    assert postprocess(raw, _meta(), conf_thresh=0.95, body=body) == [[]]


def test_original_pixel_camera_and_boxes_hand_checked(body):
    humans = postprocess(_raw(body, [0.9, 0.8, 0.7]), _meta(), body=body)[0]
    h = humans[0]
    # f = 100 px in the 0.5x resized image -> 200 px; pp (112, 56) continuous -> (223.5, 111.5) px
    # centres.
    assert np.allclose(h.focal, [200, 200]) and np.allclose(h.principal_point, [223.5, 111.5])
    assert h.vertices.shape == (6890, 3) and h.joints.shape == (45, 3) and h.betas.shape == (11,)
    assert np.allclose(h.transl, [-0.3, 0.2, 6.0]) and np.isclose(h.height_m, 1.70, atol=2e-3)
    for (
        person
    ) in humans:  # joints projected with the returned K land on the returned box (bounding it)
        uv = project(person.joints, person.K)
        x1, y1, x2, y2 = person.bbox_xyxy
        assert np.allclose([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()],
                           [x1, y1, x2, y2], atol=1e-3)  # fmt: skip
        assert np.allclose(person.keypoints_2d, uv, atol=1e-3)
    # Axis-angle pose: global orient diag(1, -1, -1) is a half turn about x.
    assert np.allclose(np.abs(h.pose[:3]), [math.pi, 0, 0], atol=1e-5)


def test_kid_blend_shrinks_and_flags_children(body):
    humans = postprocess(_raw(body, [0.9, 0.8, 0.7], kid=(0.0, 1.0, 0.4)), _meta(), body=body)[0]
    assert [h.is_child for h in humans] == [False, True, False]
    assert humans[1].height_m < humans[2].height_m < humans[0].height_m
    assert abs(humans[1].height_m - 1.10) < 0.02
    adult = postprocess(
        _raw(body, [0.9, 0.8], kid=(0.0, 1.0)), _meta(), body=body, use_kid_blend=False
    )[0]
    assert np.isclose(adult[1].height_m, 1.70, atol=2e-3) and adult[1].extras["kid_blend"] == 1.0


def test_known_camera_reprojects_people_onto_the_same_pixels(body):
    raw = _raw(body, [0.9, 0.8, 0.7])
    own = postprocess(raw, _meta(), body=body)[0]
    K_real = np.array([[236.0, 0, 230.0], [0, 232.0, 105.0], [0, 0, 1]])
    placed = postprocess(raw, _meta(), body=body, K=K_real)[0]
    for a, b in zip(own, placed):
        assert np.allclose(b.K, K_real) and np.allclose(b.extras["K_network"], a.K)
        before, after = project(a.vertices, a.K), project(b.vertices, K_real)
        assert np.allclose(project(b.joints[0], K_real), project(a.joints[0], a.K), atol=1e-4)
        assert np.abs(after - before).max() < 0.02 * np.ptp(before[:, 1])
        assert np.isclose(b.height_m, a.height_m) and np.allclose(b.betas, a.betas)
        assert np.isclose(b.pelvis[2] / a.pelvis[2], math.sqrt(236 * 232) / 200)


def test_batch_metas_must_match(body):
    with pytest.raises(ValueError, match="batch of 1 images but 2 metas"):
        postprocess(_raw(body, [0.9]), [_meta(), _meta()], body=body)
    with pytest.raises(ValueError, match="body model is required"):
        postprocess(_raw(body, [0.9]), _meta())


def test_ten_beta_configs_report_a_zero_kid_blend(body):
    raw = _raw(body, [0.9])
    raw["pred_betas"] = raw["pred_betas"][..., :10]
    (h,) = postprocess(raw, _meta(), body=body)[0]
    assert h.betas.shape == (11,) and h.betas[10] == 0 and not h.is_child
