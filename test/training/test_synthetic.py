"""The synthetic generator is deterministic and its images show the people where the annotation
says."""

from __future__ import annotations

import cv2
import numpy as np

from training.data.body import ToyBody
from training.synthetic import main, project


def test_same_seed_gives_identical_files(tmp_path, synthetic_root, manifest):
    assert main(["--out", str(tmp_path), "--seed", "0", "--images", "3"]) == 0
    entry = manifest["formats"]["agora"]
    a = (synthetic_root / entry["file"]).read_bytes()
    b = (tmp_path / entry["file"]).read_bytes()
    assert a == b
    assert (tmp_path / "manifest.json").read_text() == (
        synthetic_root / "manifest.json"
    ).read_text()


def test_people_are_drawn_over_their_projected_bodies(synthetic_root, manifest):
    entry = manifest["formats"]["dto_humans_coco"]
    body = ToyBody()
    for key, truth in entry["images"].items():
        image = cv2.imread(str(synthetic_root / entry["image_root"] / key))
        verts, _ = body(
            np.asarray(truth["poses"]), np.asarray(truth["betas"]), np.asarray(truth["transl"])
        )
        uv = project(verts, np.asarray(truth["K"])).reshape(-1, 2)
        H, W = image.shape[:2]
        inside = (uv[:, 0] >= 1) & (uv[:, 0] < W - 1) & (uv[:, 1] >= 1) & (uv[:, 1] < H - 1)
        pix = image[uv[inside, 1].astype(int), uv[inside, 0].astype(int)]
        assert (
            inside.any() and pix.max(1).min() >= 80
        )  # noise background is < 60, people >= 100 (JPEG slack)
