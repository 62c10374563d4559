"""``python -m training.eval``: an oracle scores perfectly; the CLI writes both reports per
benchmark."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model
from training.data.body import GenderedBody
from training.data.formats import read
from training.eval.run import Prediction, evaluate, gt_meshes, main


@pytest.fixture(scope="module")
def regressors(tmp_path_factory, body):
    """SYNTHETIC joint regressors (convex vertex weights), standing in for the user's H36M / extra
    files."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("regressors")
    out = {}
    for name, rows in (("h36m", 17), ("extra", 9)):
        w = rng.random((rows, body.num_vertices)) ** 8
        out[name] = root / f"{name}.npy"
        np.save(out[name], w / w.sum(1, keepdims=True))
    return out


@pytest.mark.parametrize("benchmark", ["3dpw", "agora"])
def test_an_oracle_scores_perfectly(benchmark, synthetic_root, manifest, gendered, regressors):
    entry = manifest["formats"][benchmark]
    anns = read(entry["reader"], synthetic_root / entry["file"])

    def oracle(image, ann):
        verts, joints = gt_meshes(gendered, ann)
        transl = (
            ann.transl if ann.frame == "camera" else joints[:, 0]
        )  # unused by these benchmarks
        return Prediction(np.ones(len(verts)), verts, joints, ann.K, transl, ann.betas)

    load = lambda ann: cv2.imread(str(synthetic_root / entry["image_root"] / ann.image))  # noqa: E731
    metrics = evaluate(
        benchmark, anns, load, oracle, gendered, np.load(regressors["h36m"]), progress=False
    )
    assert metrics["MPJPE_mm"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["f1"] == pytest.approx(1.0)
    if benchmark == "3dpw":
        assert metrics["PA-MPJPE_mm"] == pytest.approx(0.0, abs=1e-3)
        assert metrics["MVE_mm"] == pytest.approx(0.0, abs=1e-3)
        assert metrics["focal_MAE_px"] == 0.0
        # Predicted heights use the neutral body (the network's), GT heights the gendered one: a
        # real gap.
        assert 10.0 < metrics["height_err_mm"] < 150.0
    else:
        assert metrics["NMVE_mm"] == pytest.approx(0.0, abs=1e-3)


def test_gendered_gt_is_the_official_protocol(synthetic_root, manifest, body, gendered):
    """3DPW GT comes from each person's gendered model; the neutral one differs, and is refused by
    default."""
    entry = manifest["formats"]["3dpw"]
    ann = read("3dpw", synthetic_root / entry["file"])[0]
    verts, _ = gt_meshes(gendered, ann)
    for p, g in enumerate(ann.genders):
        layer = gendered.layers["male" if g == "m" else "female"]
        own, _ = gt_meshes(
            GenderedBody(layer, allow_neutral_gt=True), ann.subset([p])
        )  # all on that model
        np.testing.assert_allclose(verts[p], own[0], atol=1e-5)
    neutral, _ = gt_meshes(GenderedBody(body, allow_neutral_gt=True), ann)
    assert np.abs(neutral - verts).max() > 0.01
    with pytest.raises(ValueError, match="gendered SMPL"):
        gt_meshes(body, ann)


def test_missing_regressor_is_named(body):
    with pytest.raises(ValueError, match="h36m-regressor"):
        evaluate("3dpw", [], lambda a: None, lambda i, a: None, body)
    with pytest.raises(ValueError, match="extra-regressor"):
        evaluate("rh", [], lambda a: None, lambda i, a: None, body)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model({"preset": "fov_kid", **TINY_OVERRIDES})
    path = tmp_path_factory.mktemp("ckpt") / "tiny.bin"
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize("benchmark", ["rh", "3dpw", "agora", "mupots", "panoptic"])
def test_cli_writes_markdown_and_json_reports(
    benchmark,
    tmp_path,
    synthetic_root,
    manifest,
    synthetic_smpl,
    regressors,
    tiny_checkpoint,
    gendered_files,
):
    entry = manifest["formats"][benchmark]
    args = ["--benchmark", benchmark, "--annots", str(synthetic_root / entry["file"]),
            "--images", str(synthetic_root / entry["image_root"]), "--checkpoint",
            str(tiny_checkpoint), "--model", json.dumps({"preset": "fov_kid", **TINY_OVERRIDES}),
            "--smpl", str(synthetic_smpl[0]), "--kid-template", str(synthetic_smpl[1]),
            "--h36m-regressor", str(regressors["h36m"]), "--extra-regressor",
            str(regressors["extra"]), "--device", "cpu", "--limit", "2", "--out", str(tmp_path),
            "--smpl-male", str(gendered_files["male"]), "--smpl-female",
            str(gendered_files["female"])]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["benchmark"] == benchmark and report["metrics"]["num_images"] == 2
    key = {"rh": "PCRD_0.2", "3dpw": "MPJPE_mm", "agora": "NMVE_mm", "mupots": "PCK_all",
           "panoptic": "MPJPE_mm_haggling"}[benchmark]  # fmt: skip
    assert key in report["metrics"]
    assert "| metric | value |" in (tmp_path / "report.md").read_text()
