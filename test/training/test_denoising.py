"""Denoising queries (spec mahmr_model §4.4): config parsing, the attention mask's structure, the
noisy queries' layout and noise ranges, and that the mask hides the DN queries from the matching
queries."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mahmr_ros.model import TINY_OVERRIDES, build_model
from mahmr_ros.model.config import resolve_config
from training.config import load_config
from training.denoising import (
    PAD_BOX,
    DNConfig,
    build_dn_queries,
    dn_attention_mask,
    step_generator,
)
from training.forward import forward_train
from training.losses.matcher import box_cxcywh_to_xyxy


def test_config_section_parsing():
    assert DNConfig.from_config(None) is None
    assert DNConfig.from_config({"enabled": False, "groups": 10}) is None
    assert DNConfig.from_config({"groups": 0}) is None
    assert DNConfig.from_config({}) == DNConfig(groups=10, box_noise=0.4, content_noise=0.2)
    assert DNConfig.from_config({"groups": 3}).groups == 3
    with pytest.raises(ValueError, match="unknown dn key.*'noise'"):
        DNConfig.from_config({"noise": 0.4})
    with pytest.raises(ValueError, match="dn.groups"):
        DNConfig.from_config({"groups": -1})
    with pytest.raises(ValueError, match="box_noise"):
        DNConfig.from_config({"box_noise": -0.1})


def test_attention_mask_structure_on_a_small_case():
    # 2 groups of (2 positives + 2 negatives), then 3 matching queries: 11 x 11.
    mask = dn_attention_mask(groups=2, pad=2, num_queries=3)
    assert mask.shape == (11, 11) and mask.dtype == torch.bool
    g0, g1, match = slice(0, 4), slice(4, 8), slice(8, 11)
    assert mask[match, match].all()  # matching queries see each other ...
    assert not mask[match, :8].any()  # ... and no DN query
    assert (
        mask[g0, g0].all() and mask[g1, g1].all()
    )  # a group sees itself (positives and negatives)
    assert not mask[g0, g1].any() and not mask[g1, g0].any()  # groups cannot see each other
    assert mask[:8, match].all()  # DN queries see the matching queries
    assert int(mask.sum()) == 9 + 2 * 16 + 8 * 3


def make_targets():
    """Image 0 with 2 people, image 1 with 1 (so pad = 2 and image 1 has one padding slot per
    block)."""
    gen = torch.Generator().manual_seed(3)
    boxes = [
        torch.tensor([[0.3, 0.4, 0.2, 0.5], [0.7, 0.5, 0.1, 0.3]]),
        torch.tensor([[0.5, 0.5, 0.4, 0.6]]),
    ]
    return [
        {
            "boxes": b,
            "poses": torch.randn(len(b), 72, generator=gen) * 0.3,
            "betas": torch.randn(len(b), 11, generator=gen),
        }
        for b in boxes
    ]


def test_queries_layout_padding_and_noise_ranges():
    targets = make_targets()
    enc = torch.nn.Linear(82, 82)
    with torch.no_grad():  # identity encoder: the content query IS the noisy [theta, beta]
        enc.weight.copy_(torch.eye(82))
        enc.bias.zero_()
    cfg = DNConfig(groups=3, box_noise=0.4, content_noise=0.2)
    dn = build_dn_queries(
        enc, targets, cfg, num_queries=5, generator=torch.Generator().manual_seed(0)
    )
    pad, G = 2, 3
    assert (dn.pad, dn.groups, dn.counts, dn.num_queries) == (pad, G, [2, 1], G * 2 * pad)
    assert dn.content.shape == (2, 12, 82) and dn.anchors.shape == (2, 12, 4)
    assert dn.attn_mask.shape == (17, 17)
    boxes = torch.sigmoid(dn.anchors).reshape(2, G, 2, pad, 4)
    content = dn.content.detach().reshape(2, G, 2, pad, 82)
    # Padding slot of image 1 (slot 1): zero content and the whole-canvas anchor.
    assert torch.equal(content[1, :, :, 1], torch.zeros(G, 2, 82))
    torch.testing.assert_close(
        boxes[1, :, :, 1], torch.tensor(PAD_BOX).expand(G, 2, 4), atol=1e-4, rtol=0
    )
    for b, t in enumerate(targets):
        n = len(t["boxes"])
        gt_xyxy = box_cxcywh_to_xyxy(t["boxes"])
        half = torch.cat([t["boxes"][:, 2:], t["boxes"][:, 2:]], -1) / 2
        params = torch.cat([t["poses"], t["betas"][:, :10]], -1)
        for neg, (lo, hi) in enumerate([(0.0, 1.0), (1.0, 2.0)]):
            # Corner shift in units of (w/2, h/2) x box_noise: [0, 1) for positives, [1, 2) for
            # negatives (the GT boxes here stay inside [0, 1], so the clamp does not bite).
            shift = (
                (box_cxcywh_to_xyxy(boxes[b, :, neg, :n]) - gt_xyxy).abs() / (half * 0.4)
            ).flatten()
            assert shift.min() >= lo - 1e-3 and shift.max() < hi + 1e-3
            noise = ((content[b, :, neg, :n] - params).abs() / 0.2).flatten()
            assert noise.min() >= lo - 1e-5 and noise.max() < hi + 1e-5
    # Every group is its own noisy copy.
    assert not torch.allclose(content[0, 0], content[0, 1])
    # No GT in the whole batch: no DN queries.
    empty = [
        {"boxes": torch.zeros(0, 4), "poses": torch.zeros(0, 72), "betas": torch.zeros(0, 10)}
    ]
    assert build_dn_queries(enc, empty, cfg, 5, torch.Generator()) is None


def test_noise_is_deterministic_per_step():
    targets, enc = make_targets(), torch.nn.Linear(82, 16)
    make = lambda step: build_dn_queries(enc, targets, DNConfig(), 5, step_generator(42, step, 0))  # noqa: E731
    torch.testing.assert_close(make(3).anchors, make(3).anchors, rtol=0, atol=0)
    assert not torch.equal(make(3).anchors, make(4).anchors)


def test_bad_targets_name_what_is_wrong():
    targets = make_targets()
    targets[1]["betas"] = torch.zeros(1, 4)
    with pytest.raises(ValueError, match=r"image 1: DN needs poses .* betas"):
        build_dn_queries(torch.nn.Linear(82, 16), targets, DNConfig(), 5, torch.Generator())


def test_matching_outputs_are_unchanged_by_the_dn_queries():
    """The mask works: with DN queries present the matching queries give the no-DN outputs, and the
    DN queries' own outputs are not constant (they do read the image)."""
    torch.manual_seed(0)
    model = build_model({"preset": "default", **TINY_OVERRIDES})
    images, hw = torch.randn(2, 3, 168, 224), torch.tensor([[168, 224], [150, 224]])
    dn = build_dn_queries(model.dn_enc, make_targets(), DNConfig(groups=2), model.cfg.num_queries,
                          torch.Generator().manual_seed(0))  # fmt: skip
    with torch.no_grad():
        plain = forward_train(model, images, hw)
        with_dn = forward_train(model, images, hw, dn)
        dn.attn_mask = torch.ones_like(dn.attn_mask)  # negative control: everyone sees everyone
        leaky = forward_train(model, images, hw, dn)
    assert "dn" not in plain and len(with_dn["dn"]["layers"]) == model.cfg.dec_layers
    for a, b, c in zip(plain["layers"], with_dn["layers"], leaky["layers"], strict=True):
        for key in ("pred_confs", "pred_boxes", "pred_rotmats", "pred_betas", "pred_transl"):
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(c["pred_boxes"], a["pred_boxes"], rtol=1e-5, atol=1e-6)
    last = with_dn["dn"]["layers"][-1]
    assert last["pred_boxes"].shape == (2, 8, 4) and last["pred_poses"].shape == (2, 8, 72)
    # Positive DN boxes start at the noisy anchors, so they differ between slots.
    assert last["pred_boxes"][0].std(0).min() > 0


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "training" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_only_the_stage1_configs_enable_denoising(path):
    cfg = load_config(path)
    dn = DNConfig.from_config(cfg.get("dn"))
    if path.stem == "stage1":
        assert dn == DNConfig(groups=10, box_noise=0.4, content_noise=0.2)  # official dn_cfg
    if "stage1" in path.stem:
        assert dn is not None and resolve_config(cfg["model"]).use_dn  # the model has dn_enc
    else:  # stages 2-3 and the fine-tunes train without DN queries
        assert dn is None
