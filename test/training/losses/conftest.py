"""Test doubles shared by the loss tests: a body-model stand-in and a two-person GT target."""

from __future__ import annotations

import pytest
import torch


class FakeBody(torch.nn.Module):
    """Stands in for the SMPL layer ((B, 24, 3, 3) rotmats, (B, S) betas -> vertices, joints): the
    joints are the first 45 entries of a fixed pattern rotated by the global orient and shifted by
    0.01 beta_0."""

    def forward(self, rotmats, betas):
        base = torch.linspace(-0.5, 0.5, 45 * 3).reshape(45, 3)
        joints = torch.einsum("nij,kj->nki", rotmats[:, 0], base) + betas[:, :1, None] * 0.01
        return joints, joints


@pytest.fixture
def fake_body() -> FakeBody:
    return FakeBody()


def _two_people(
    has_3d: bool = True, num_betas: int = 11, boxes: torch.Tensor | None = None
) -> dict:
    default_boxes = torch.tensor([[0.3, 0.3, 0.2, 0.4], [0.7, 0.5, 0.2, 0.4]])
    return {
        "boxes": default_boxes if boxes is None else boxes.clone(),
        "j2ds": torch.zeros(2, 45, 2),
        "j2ds_mask": torch.ones(2, 45, dtype=torch.bool),
        "poses": torch.zeros(2, 72),
        "betas": torch.zeros(2, num_betas),
        "j3ds": torch.zeros(2, 45, 3),
        "depths": torch.tensor([3.0, 3.5]),
        "focal": torch.tensor(100.0),
        "has_3d": torch.tensor(has_3d),
        "detect_all": torch.tensor(True),
        "scale_map": torch.zeros(2, 2, 2),
        "depth_ids": torch.tensor([-1, -1]),
        "resized_hw": torch.tensor([200, 100]),
    }


@pytest.fixture
def make_target():
    """``make_target(has_3d=True, num_betas=11, boxes=None)``: a fresh GT target of one 200 x 100
    image (focal 100 px) with two people at depths 3 and 3.5 m, boxes (cx, cy, w, h) / input_size
    (default (0.3, 0.3, 0.2, 0.4) and (0.7, 0.5, 0.2, 0.4)), zero pose, shape and joints, 45
    visible joints."""
    return _two_people
