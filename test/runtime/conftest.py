"""Fixtures of the runtime tests: a tiny network whose scale map varies strongly with the image, so
that the test images give different SAT token counts (hr cells, pooled groups, the no-pooled-group
quirk)."""

from __future__ import annotations

import pytest
import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model


def make_sat_model(seed: int = 0):
    """Tiny fov_kid-layout network with a saturated scale head (channel 0 shifted so some groups
    pool)."""
    torch.manual_seed(seed)
    model = build_model(TINY_OVERRIDES)
    with torch.no_grad():
        model.scale_head.layers[-1].weight.mul_(60.0)
        model.scale_head.layers[-1].bias[0] -= 2.5
    return model


@pytest.fixture(scope="session")
def sat_model_factory():
    """``make_sat_model`` as a fixture (another seed = other weights)."""
    return make_sat_model


@pytest.fixture(scope="session")
def sat_model():
    return make_sat_model()


@pytest.fixture(scope="session")
def sat_images():
    """Five (1, 3, 168, 224) images (16:9-like padded input at input_size 224) and their (h', w').

    With ``sat_model`` their token counts are 72 (no pooled group: the quirk), 27, 57, 72 and 87.
    """
    gen = torch.Generator().manual_seed(3)
    images = [torch.randn(1, 3, 168, 224, generator=gen) * (0.5 + 0.3 * s) for s in range(5)]
    return [(image, torch.tensor([[126, 224]])) for image in images]


@pytest.fixture(scope="session")
def export_dir(sat_model, tmp_path_factory):
    """The four stages of ``sat_model`` exported once per session (``padded_hw`` (168, 224))."""
    from mahmr_ros.runtime.export import export_stages

    out = tmp_path_factory.mktemp("onnx")
    export_stages(sat_model, out, padded_hw=(168, 224))
    return out
