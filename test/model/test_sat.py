import torch
import torch.nn.functional as F

from mahmr_ros.model import sat


def _map(conf, scale):
    """(1, G1h, G1w, 2) scale map from two nested lists."""
    return torch.stack([torch.tensor(conf), torch.tensor(scale)], dim=-1)[None].float()


# 4 x 6 lvl1 cells = 2 x 3 groups. Hand-made cases, one per rule of spec §1.5 steps 3 and 5:
#   (0,0) conf .9 scale .2 -> high-res; (0,1) conf .9 scale .8 -> kept (large person);
#   (1,0), (1,1) conf .1 but in a valid group -> kept; group (0,1) all background -> pooled;
#   group (0,2): (1,5) conf exactly .3 -> NOT valid (strict >) -> pooled;
#   group (1,0): (2,1) conf .31, scale exactly .5 -> valid, NOT high-res (strict <) -> 4 kept;
#   group (1,1): (3,3) conf .5 scale .49 -> high-res, the other 3 kept; group (1,2) -> pooled.
CONF = [
    [0.9, 0.9, 0.1, 0.1, 0.1, 0.1],
    [0.1, 0.1, 0.1, 0.1, 0.1, 0.3],
    [0.1, 0.31, 0.1, 0.1, 0.1, 0.1],
    [0.1, 0.1, 0.1, 0.5, 0.1, 0.1],
]
SCALE = [
    [0.2, 0.8, 0.1, 0.1, 0.1, 0.1],
    [0.9, 0.9, 0.1, 0.1, 0.1, 0.1],
    [0.9, 0.5, 0.1, 0.1, 0.1, 0.1],
    [0.9, 0.9, 0.1, 0.49, 0.1, 0.1],
]


def test_constructed_scale_map_selects_the_right_cells():
    masks = sat.select_cells(_map(CONF, SCALE), 0.3, 0.5, official_quirk=True)
    assert torch.nonzero(masks.hr_cells[0]).tolist() == [[0, 0], [3, 3]]
    assert torch.nonzero(masks.pooled_groups[0]).tolist() == [[0, 1], [0, 2], [1, 2]]
    kept = torch.nonzero(masks.keep_lvl1[0]).tolist()
    assert kept == [[0, 1], [1, 0], [1, 1], [2, 0], [2, 1], [2, 2], [2, 3], [3, 0], [3, 1], [3, 2]]
    # 2 hr cells x 4 lvl0 tokens + 10 kept lvl1 + 3 pooled lvl2.
    assert masks.num_tokens().tolist() == [8 + 10 + 3]


def test_quirk_keeps_hr_cells_only_in_images_without_pooled_groups():
    all_small = _map(
        [[0.9] * 4] * 4, [[0.1] * 4] * 4
    )  # every cell valid and small: no pooled group
    with_bg = all_small.clone()
    with_bg[0, 2:, 2:, 0] = 0.0  # one background group
    batch = torch.cat([all_small, with_bg])
    quirk = sat.select_cells(batch, official_quirk=True)
    plain = sat.select_cells(batch, official_quirk=False)
    # Image 0: quirk keeps all 16 hr cells as lvl1 too (5 x G1 tokens); without it 4 x G1.
    assert quirk.num_tokens()[0] == 5 * 16 and plain.num_tokens()[0] == 4 * 16
    # Image 1 has a pooled group, so the quirk does not apply to it, whatever image 0 does.
    assert quirk.num_tokens()[1] == plain.num_tokens()[1] == 4 * 12 + 1
    assert not quirk.keep_lvl1[1].any()
    # Per-image semantics: the result of image 1 is the same alone.
    alone = sat.select_cells(with_bg, official_quirk=True)
    assert torch.equal(alone.keep_lvl1[0], quirk.keep_lvl1[1])


def test_all_background_pools_every_group():
    masks = sat.select_cells(_map([[0.0] * 6] * 4, [[0.0] * 6] * 4))
    assert masks.pooled_groups.all() and not masks.keep_lvl1.any() and not masks.hr_cells.any()
    assert masks.num_tokens().tolist() == [6]  # G1 / 4


def test_morton_order_keeps_2x2_blocks_together():
    # 2 x 4 grid, raster indices: row 0 = 0..3, row 1 = 4..7.
    assert sat.morton_order(2, 4).tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert sat.morton_code(torch.tensor([3]), torch.tensor([5])).item() == 0b011011  # y=011, x=101


def test_plan_lists_cells_in_morton_order():
    masks = sat.select_cells(_map(CONF, SCALE))
    plan = sat.plan_tokens(masks.hr_cells[0], masks.pooled_groups[0], masks.keep_lvl1[0])
    assert plan.hr_yx.tolist() == [[0, 0], [3, 3]]
    assert plan.lvl2_yx.tolist() == [[0, 1], [0, 2], [1, 2]]
    # Morton order: group (0,0) cells first, then group (1,0) = lvl1 rows 2-3 cols 0-1, then group
    # (1,1).
    assert plan.lvl1_yx.tolist() == [
        [0, 1],
        [1, 0],
        [1, 1],
        [2, 0],
        [2, 1],
        [3, 0],
        [3, 1],
        [2, 2],
        [2, 3],
        [3, 2],
    ]


def test_gather_and_pool_use_the_right_pixels_and_tokens():
    image = torch.arange(3 * 56 * 84, dtype=torch.float32).reshape(3, 56, 84)
    patches = sat.gather_hr_patches(image, torch.tensor([[1, 2]]), 28)
    assert torch.equal(patches[0], image[:, 28:56, 56:84])
    grid = torch.randn(4, 6, 5)
    pooled = sat.max_pool_groups(grid, torch.tensor([[1, 2]]))
    assert torch.equal(pooled[0], grid[2:4, 4:6].reshape(4, 5).amax(0))


def test_bilinear_half_resize_of_a_cell_is_a_2x2_average():
    """Premise of the lvl1 path (spec §1.5.1): the 28 -> 14 px bilinear resize is a 2x2 average
    pool."""
    patch = torch.randn(1, 3, 28, 28)
    bilinear = F.interpolate(
        patch, size=(14, 14), mode="bilinear", align_corners=False, antialias=False
    )
    assert torch.allclose(bilinear, F.avg_pool2d(patch, 2), atol=1e-6)
