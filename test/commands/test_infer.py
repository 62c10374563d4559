"""``python -m mahmr_ros.cli infer`` on a tiny random-weights checkpoint and the synthetic SMPL
body."""

import json

import cv2
import numpy as np
import pytest
import torch

from mahmr_ros import cli, pipeline
from mahmr_ros.body import make_synthetic_smpl
from mahmr_ros.model import TINY_OVERRIDES, build_model


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    torch.manual_seed(0)
    sd = build_model(TINY_OVERRIDES).state_dict()
    sd["conf_head.bias"] = torch.tensor([4.0])  # every query is a person
    torch.save(sd, root / "tiny.bin")
    smpl = make_synthetic_smpl(
        root / "smpl.npz", num_vertices=900, kid_template_path=root / "kid.npy"
    )
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / "wide.png"), rng.integers(0, 256, (120, 200, 3), dtype=np.uint8))
    cv2.imwrite(str(images / "tall.jpg"), rng.integers(0, 256, (150, 90, 3), dtype=np.uint8))
    return root, smpl


def _args(root, smpl, *extra):
    return [
        "infer", str(root / "images"), "--weights", str(root / "tiny.bin"), "--smpl", str(smpl),
        "--kid-template", str(root / "kid.npy"), "--config", json.dumps(TINY_OVERRIDES),
        "--device", "cpu", "--backend", "eager", *extra,
    ]  # fmt: skip


def test_writes_npz_json_and_overlay_per_image(assets, tmp_path, capsys):
    root, smpl = assets
    assert cli.main(_args(root, smpl, "--out", str(tmp_path))) == 0
    Q = TINY_OVERRIDES["num_queries"]
    for stem, (H, W) in (("wide", (120, 200)), ("tall", (150, 90))):
        with np.load(tmp_path / f"{stem}.npz") as npz:
            assert npz["vertices"].shape == (Q, 900, 3) and npz["joints"].shape == (Q, 45, 3)
            assert (
                npz["betas"].shape == (Q, 11)
                and npz["pose"].shape == (Q, 72)
                and npz["faces"].shape[1] == 3
            )
            assert bool(npz["K_estimated"]) and npz["K"][2].tolist() == [0, 0, 1]
            # Joints projected with the stored K give the stored keypoints.
            uvw = npz["joints"] @ npz["K"].T
            assert np.allclose(uvw[..., :2] / uvw[..., 2:], npz["keypoints_2d"], atol=1e-2)
        summary = json.loads((tmp_path / f"{stem}.json").read_text())
        assert (
            len(summary["people"]) == Q
            and summary["K_estimated"]
            and summary["body_model"] == "smpl"
        )
        overlay = cv2.imread(str(tmp_path / f"{stem}_overlay.png"))
        assert overlay.shape == (H, W, 3)
    assert "wrote 2 result(s)" in capsys.readouterr().out


def test_given_intrinsics_are_used_and_unreadable_images_fail(assets, tmp_path, capsys):
    root, smpl = assets
    (tmp_path / "broken.png").write_bytes(b"not an image")
    args = _args(
        root,
        smpl,
        "--out",
        str(tmp_path / "out"),
        "--intrinsics",
        "210,205,99.5,59.5",
        "--no-overlay",
    )
    args[1:2] = [str(root / "images" / "wide.png"), str(tmp_path / "broken.png")]
    assert cli.main(args) == 1
    assert (
        "cannot read image" in capsys.readouterr().err
        and "broken.png" in capsys.readouterr().err + "broken.png"
    )
    with np.load(tmp_path / "out" / "wide.npz") as npz:
        assert np.allclose(npz["K"], [[210, 0, 99.5], [0, 205, 59.5], [0, 0, 1]]) and not bool(
            npz["K_estimated"]
        )
    assert not (tmp_path / "out" / "wide_overlay.png").exists()


def test_usage_errors_are_clear(assets, tmp_path, capsys, monkeypatch):
    root, smpl = assets
    assert cli.main(["infer", str(root / "images"), "--weights", str(root / "tiny.bin")]) == 2
    assert "--weights and --smpl are required" in capsys.readouterr().err
    assert cli.main(_args(root, smpl, "--intrinsics", "1,2,3")) == 2
    assert "FX,FY,CX,CY" in capsys.readouterr().err
    assert (
        cli.main(
            [*_args(root, smpl)[:2], "--weights", str(tmp_path / "none.bin"), "--smpl", str(smpl)]
        )
        == 2
    )
    assert "none.bin" in capsys.readouterr().err
    monkeypatch.setitem(
        pipeline._REGISTRY, "offline", "mahmr_ros.offline.not_built_yet:OfflineEstimator"
    )
    assert cli.main(["infer", str(root / "images"), "--default", "--out", str(tmp_path)]) == 2
    assert "offline default estimator is not available" in capsys.readouterr().err
