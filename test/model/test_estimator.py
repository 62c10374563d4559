"""MahmrEstimator end to end: a tiny random-weights checkpoint written to tmp + the synthetic SMPL
body."""

import math

import numpy as np
import pytest
import torch

from mahmr_ros.body import SMPLFileError, make_synthetic_smpl
from mahmr_ros.model import TINY_OVERRIDES, CheckpointError, build_model
from mahmr_ros.model.camera import project
from mahmr_ros.model.estimator import MahmrEstimator
from mahmr_ros.pipeline import Estimator, Pipeline
from mahmr_ros.types import Estimation


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("estimator")
    torch.manual_seed(0)
    model = build_model(TINY_OVERRIDES)
    sd = model.state_dict()
    sd["conf_head.bias"] = torch.tensor([4.0])  # every query confident, so the test sees people
    torch.save({"module." + k: v for k, v in sd.items()}, root / "tiny.bin")
    smpl = make_synthetic_smpl(root / "smpl.npz", kid_template_path=root / "kid.npy")
    return {"weights": root / "tiny.bin", "smpl_path": smpl, "kid_template_path": root / "kid.npy"}


@pytest.fixture(scope="module")
def estimator(files):
    return MahmrEstimator(config=TINY_OVERRIDES, device="cpu", backend="eager", **files)


@pytest.fixture(scope="module")
def model_section(files):
    """The ``model`` section of a pipeline config for the same tiny estimator."""
    return {
        **{k: str(v) for k, v in files.items()},
        "config": TINY_OVERRIDES,
        "device": "cpu",
        "backend": "eager",
    }


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)


def test_end_to_end_with_the_fov_camera(estimator, image):
    assert isinstance(estimator, Estimator)
    est = estimator.estimate(image, None)
    assert isinstance(est, Estimation) and est.K_estimated
    assert len(est.humans) == TINY_OVERRIDES["num_queries"]
    h = est.humans[0]
    assert h.vertices.shape == (6890, 3) and h.joints.shape == (45, 3) and h.betas.shape == (11,)
    assert h.rotmats.shape == (24, 3, 3) and np.all(np.isfinite(h.vertices)) and h.transl[2] > 0
    # K from the FoV head in original pixels: f = H / (2 tan(fov / 2)) (resized h' = 149 of 200 *
    # 224/300).
    r = 224 / 300
    f = int(200 * r) / r / (2 * math.tan(h.extras["fov_rad"] / 2))
    assert np.allclose(
        est.K_used, [[f, 0, 112 / r - 0.5], [0, f, int(200 * r) / 2 / r - 0.5], [0, 0, 1]]
    )
    assert np.allclose(h.K, est.K_used, rtol=1e-5)
    assert {"preprocess", "network", "postprocess"} <= set(est.timings_ms)
    assert (
        estimator.topology().num_vertices == 6890 and len(estimator.topology().joint_names) == 45
    )


def test_deterministic_and_given_camera_reprojects_onto_the_same_pixels(estimator, image):
    a = estimator.estimate(image, None)
    b = estimator.estimate(image, None)
    assert all(np.array_equal(x.vertices, y.vertices) for x, y in zip(a.humans, b.humans))
    K = np.array([[300.0, 0, 140.0], [0, 310.0, 110.0], [0, 0, 1]])
    c = estimator.estimate(image, K)
    assert not c.K_estimated and np.array_equal(c.K_used, K)
    for own, placed in zip(a.humans, c.humans):
        assert np.allclose(placed.K, K)
        assert np.allclose(project(placed.joints[0], K), project(own.joints[0], own.K), atol=1e-3)
        before, after = project(own.joints, own.K), project(placed.joints, K)
        extent = np.ptp(before, axis=0).max()
        assert np.abs(after - before).max() < 0.05 * extent + 0.5


def test_pipeline_builds_it_from_the_model_config_section(model_section, image):
    pipe = Pipeline.from_config(
        {"estimator": "mahmr", "model": model_section, "dto": {"mode": "off"}}
    )
    result = pipe.process(image)
    assert len(result.humans) == TINY_OVERRIDES["num_queries"] and result.K_estimated
    assert all(h.track_id for h in result.humans) and result.body_model == "smpl"
    pipe.close()


def test_configuration_errors_name_what_is_wrong(files, tmp_path):
    base = dict(config=TINY_OVERRIDES, device="cpu", backend="eager")
    with pytest.raises(ValueError, match="model.weights is not set"):
        MahmrEstimator(**base, smpl_path=files["smpl_path"])
    with pytest.raises(ValueError, match="model.smpl_path is not set"):
        MahmrEstimator(**base, weights=files["weights"])
    with pytest.raises(FileNotFoundError, match="missing_stage3.bin"):
        MahmrEstimator(
            **base, weights=tmp_path / "missing_stage3.bin", smpl_path=files["smpl_path"]
        )
    with pytest.raises(SMPLFileError, match="SMPL_NEUTRAL.pkl"):
        MahmrEstimator(**base, weights=files["weights"], smpl_path=tmp_path / "SMPL_NEUTRAL.pkl")
    with pytest.raises(
        CheckpointError, match=r"tiny\.bin does not fit the model\n  mismatched \(5\): mean_shape"
    ):
        MahmrEstimator(**{**base, "config": {"preset": "fov", **TINY_OVERRIDES}}, **files)
    with pytest.raises(ValueError, match="eager' runs fp32 only"):
        MahmrEstimator(**{**base, "backend": "eager"}, precision="bf16", **files)


def test_without_kid_template_the_kid_blend_is_reported_not_applied(files, image, caplog):
    est = MahmrEstimator(config=TINY_OVERRIDES, device="cpu", backend="eager",
                         weights=files["weights"], smpl_path=files["smpl_path"])  # fmt: skip
    assert "no kid_template_path" in caplog.text
    h = est.estimate(image, None).humans[0]
    assert h.betas.shape == (11,) and h.extras["kid_blend"] == h.betas[10]
    est.close()
    with pytest.raises(RuntimeError, match="after close"):
        est.estimate(image, None)


def test_runtime_torch_backend_gives_the_eager_result(files, image, estimator):
    est = MahmrEstimator(config=TINY_OVERRIDES, device="cpu", backend="torch", **files)
    a, b = estimator.estimate(image, None), est.estimate(image, None)
    assert len(a.humans) == len(b.humans)
    for x, y in zip(a.humans, b.humans):
        assert np.allclose(x.vertices, y.vertices, atol=1e-4) and np.isclose(
            x.score, y.score, atol=1e-5
        )


def test_eager_is_the_runtime_torch_backend_at_fp32(estimator):
    from mahmr_ros.runtime.torch_backend import TorchBackend

    assert isinstance(estimator.backend, TorchBackend) and estimator.backend.precision == "fp32"


def test_smpl_files_are_checked_against_the_checkpoints_embedded_body(files, tmp_path, caplog):
    """A checkpoint's human_model.* data (never used) flags a user SMPL file that differs from
    it."""
    sd = torch.load(files["weights"], weights_only=True)
    smpl = np.load(files["smpl_path"])
    layer = MahmrEstimator(
        config=TINY_OVERRIDES, device="cpu", backend="eager", **files
    ).body.layer
    sd["module.human_model.layer_n.v_template"] = torch.as_tensor(smpl["v_template"]) + 0.01
    sd["module.human_model.layer_n.shapedirs"] = layer.shapedirs.clone()
    torch.save(sd, tmp_path / "with_smpl.bin")
    est = MahmrEstimator(config=TINY_OVERRIDES, device="cpu", backend="eager",
                         **{**files, "weights": tmp_path / "with_smpl.bin"})  # fmt: skip
    assert (
        est.smpl_check["v_template"] == pytest.approx(0.01) and est.smpl_check["kid_blend"] < 1e-6
    )
    assert "your SMPL v_template differs" in caplog.text and "kid_blend differs" not in caplog.text
    assert any(k.startswith("human_model.") for k in est.report["ignored"])


@pytest.mark.slow
def test_full_size_seeded_official_checkpoint_end_to_end(make_state_dict, files, tmp_path):
    """Image in, HumanEstimates out, overlay written, with a seeded full-size fov_kid file
    (official keys)."""
    from mahmr_ros.viz import render_overlay

    sd = make_state_dict("fov_kid", seed=1)
    sd["scale_head.layers.3.bias"] = torch.tensor(
        [-10.0, 0.0]
    )  # all background: 299 cheap lvl2 tokens
    sd["conf_head.bias"] = torch.tensor([10.0])  # every query is a person
    sd["fov_head.layers.3.bias"] = torch.tensor([1.0])  # ~57 degrees vertical FoV
    torch.save(sd, tmp_path / "mahmr_stage3.bin")
    del sd
    paths = {**files, "weights": tmp_path / "mahmr_stage3.bin"}
    est = MahmrEstimator(config="auto", device="cpu", backend="eager", **paths)
    assert est.report["detected_config"] == "fov_kid" and est.cfg.input_size == 1288
    image = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    result = est.estimate(image, None)
    assert len(result.humans) == 50 and result.humans[0].vertices.shape == (6890, 3)
    assert np.isclose(result.humans[0].extras["fov_rad"], 1.0, atol=0.05)
    overlay = render_overlay(image, result.humans[:3], est.topology().faces, result.K_used)
    assert overlay.shape == image.shape and overlay.dtype == np.uint8
    est.close()


def test_pipeline_dto_gets_the_smpl_shape_space(model_section, image):
    """With an SMPL estimator, DTO updates shape coefficients (its shape model is the estimator's
    body)."""
    pipe = Pipeline.from_config(
        {"estimator": "mahmr", "model": model_section, "dto": {"mode": "prior_only"}}
    )
    assert pipe._dto.shape_model is not None
    assert pipe._dto.shape_model.num_betas == 11  # 10 SMPL coefficients + the kid blend
    result = pipe.process(image)
    assert len(result.humans) == TINY_OVERRIDES["num_queries"] and "dto" in result.timings_ms
    pipe.close()
