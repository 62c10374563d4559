"""Staged network (four graphs + host-side SAT) == the monolithic eager network, with and without
padding."""

from __future__ import annotations

import pytest
import torch

from mahmr_ros.runtime.staged import StagedNetwork, bucket
from mahmr_ros.runtime.torch_backend import TorchStageRunner

# fp32 tolerance of staged vs eager: the same ops in the same order except padded/masked attention
# rows, so differences are reduction-order rounding (observed ~1e-6); 1e-4 leaves margin for other
# CPUs.
ATOL = 1e-4


def _compare(eager: dict, staged: dict) -> None:
    for key, value in eager.items():
        if key == "sat":
            for name, mask in value.items():
                torch.testing.assert_close(staged["sat"][name], mask, atol=0, rtol=0, msg=name)
            continue
        assert staged[key].dtype == torch.float32
        torch.testing.assert_close(staged[key], value, atol=ATOL, rtol=ATOL, msg=key)


@pytest.mark.parametrize("token_bucket,patch_bucket", [(1, 1), (16, 4)])
def test_staged_equals_eager_on_images_with_different_token_counts(
    sat_model, sat_images, token_bucket, patch_bucket
):
    runner = TorchStageRunner(sat_model, torch.device("cpu"))
    staged = StagedNetwork(sat_model, runner, token_bucket=token_bucket, patch_bucket=patch_bucket)
    counts = set()
    for image, hw in sat_images:
        with torch.no_grad():
            eager = sat_model(image, hw)
        out = staged(image, hw)
        counts.add(int(out["sat"]["num_tokens"][0]))
        _compare(eager, out)
    assert len(counts) >= 4  # the images really exercise different token counts


def test_staged_batch_equals_eager_batch(sat_model, sat_images):
    images = torch.cat([image for image, _ in sat_images[:3]])
    hw = torch.tensor([[126, 224], [120, 224], [168, 200]])
    with torch.no_grad():
        eager = sat_model(images, hw)
    staged = StagedNetwork(
        sat_model, TorchStageRunner(sat_model, torch.device("cpu")), token_bucket=8
    )
    _compare(eager, staged(images, hw))


def test_staged_masks_always_when_runner_requires_them(sat_model, sat_images):
    runner = TorchStageRunner(sat_model, torch.device("cpu"))
    runner.requires_masks = True  # what graph backends ask for: masks even without padding
    image, hw = sat_images[1]
    with torch.no_grad():
        eager = sat_model(image, hw)
    _compare(eager, StagedNetwork(sat_model, runner)(image, hw))


def test_staged_records_every_stage_time(sat_model, sat_images):
    staged = StagedNetwork(sat_model, TorchStageRunner(sat_model, torch.device("cpu")))
    staged(*sat_images[2])
    assert set(staged.timings_ms) == {"scale_map", "select", "lvl0", "encoder", "decoder"}
    assert all(v > 0 for v in staged.timings_ms.values())


def test_staged_rejects_bad_input_size(sat_model):
    staged = StagedNetwork(sat_model, TorchStageRunner(sat_model, torch.device("cpu")))
    with pytest.raises(ValueError, match="multiples of 56"):
        staged(torch.zeros(1, 3, 100, 224), torch.tensor([[100, 224]]))


def test_bucket_rounds_up():
    assert [bucket(n, 16) for n in (1, 16, 17)] == [16, 16, 32]
    assert bucket(13, 1) == 13


@pytest.mark.parametrize("preset", ["default", "fov"])
def test_staged_equals_eager_for_the_other_presets(preset, sat_images):
    from mahmr_ros.model import TINY_OVERRIDES, build_model

    torch.manual_seed(0)
    model = build_model({"preset": preset, **TINY_OVERRIDES})
    staged = StagedNetwork(model, TorchStageRunner(model, torch.device("cpu")), token_bucket=8)
    image, hw = sat_images[0]
    with torch.no_grad():
        eager = model(image, hw)
    out = staged(image, hw)
    assert ("pred_fov" in out) == (preset != "default")
    assert out["pred_betas"].shape[-1] == 10
    _compare(eager, out)
