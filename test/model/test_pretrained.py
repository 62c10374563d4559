"""Starting points: the upright default mean pose, smpl_mean_params.npz loading and the DINOv2
conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mahmr_ros.model import TINY_OVERRIDES, CheckpointError, build_model
from mahmr_ros.model.pretrained import (
    DINOV2_BLOCK_KEYS,
    load_dinov2,
    load_smpl_mean_params,
    read_smpl_mean_params,
    upright_mean_pose,
)
from mahmr_ros.model.rotation import rot6d_to_rotmat

TINY = {
    "preset": "fov_kid",
    **TINY_OVERRIDES,
}  # embed 64, depth 5, get_map_layer 3, input 224 -> F0 16


def test_default_mean_pose_is_upright_and_camera_facing_never_the_identity_root():
    R = rot6d_to_rotmat(upright_mean_pose().reshape(24, 6))
    # pi about x: the body's up (+y in SMPL) points to -y (up in the OpenCV camera), its front (+z)
    # to -z.
    torch.testing.assert_close(R[0], torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    torch.testing.assert_close(R[1:], torch.eye(3).expand(23, 3, 3))
    torch.manual_seed(0)
    model = build_model(TINY)
    torch.testing.assert_close(model.mean_pose, upright_mean_pose())
    assert model.mean_shape.shape == (11,) and not model.mean_shape.any()


def _mean_params_file(path, seed=0):
    """An smpl_mean_params.npz in the HMR/SPIN layout with known rotations (rot6d = first two
    columns)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(24, 4, generator=gen), dim=-1)
    w, x, y, z = q.unbind(
        -1
    )  # quaternion -> matrix, written out independently of the code under test
    R = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                     2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                     2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
                     -1)  # fmt: skip
    R = R.reshape(24, 3, 3)
    pose = R[..., :2].reshape(24, 6).numpy().reshape(-1)  # row-major 3x2
    shape = np.linspace(-0.5, 0.5, 10).astype(np.float64)
    np.savez(path, pose=pose.astype(np.float64), shape=shape, cam=np.array([0.9, 0.0, 0.0]))
    return R, shape


def test_smpl_mean_params_load_into_the_refinement_start(tmp_path):
    R, shape = _mean_params_file(tmp_path / "smpl_mean_params.npz")
    torch.manual_seed(0)
    model = build_model(TINY)
    load_smpl_mean_params(model, tmp_path / "smpl_mean_params.npz")
    assert model.mean_pose.dtype == torch.float32 and model.mean_shape.dtype == torch.float32
    torch.testing.assert_close(
        rot6d_to_rotmat(model.mean_pose.reshape(24, 6)), R, atol=1e-6, rtol=0
    )
    np.testing.assert_allclose(model.mean_shape[:10].numpy(), shape, atol=1e-7)
    assert model.mean_shape[10] == 0  # the kid blend starts at 0
    pose10, betas10 = read_smpl_mean_params(tmp_path / "smpl_mean_params.npz", num_betas=10)
    assert pose10.shape == (144,) and betas10.shape == (10,)


def test_smpl_mean_params_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz.*built-in upright"):
        read_smpl_mean_params(tmp_path / "nope.npz")
    np.savez(tmp_path / "bad.npz", pose=np.zeros(72), shape=np.zeros(10))
    with pytest.raises(ValueError, match=r"bad.npz.*\(144,\)"):
        read_smpl_mean_params(tmp_path / "bad.npz")
    np.savez(tmp_path / "noshape.npz", pose=np.zeros(144))
    with pytest.raises(ValueError, match=r"lacks \['shape'\]"):
        read_smpl_mean_params(tmp_path / "noshape.npz")


# ------------------------------------------------------------------------------------------ DINOv2
def dinov2_state_dict(dim=64, depth=5, grid=37, seed=0, registers=0) -> dict[str, torch.Tensor]:
    """A seeded state_dict in the published facebookresearch/dinov2 hub layout (ViT with `depth`
    blocks)."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
    sd = {"cls_token": r(1, 1, dim), "pos_embed": r(1, 1 + grid * grid, dim),
          "mask_token": r(1, dim), "patch_embed.proj.weight": r(dim, 3, 14, 14),
          "patch_embed.proj.bias": r(dim), "norm.weight": r(dim), "norm.bias": r(dim)}  # fmt: skip
    shapes = {"norm1.weight": (dim,), "norm1.bias": (dim,), "attn.qkv.weight": (3 * dim, dim),
              "attn.qkv.bias": (3 * dim,), "attn.proj.weight": (dim, dim),
              "attn.proj.bias": (dim,), "ls1.gamma": (dim,), "norm2.weight": (dim,),
              "norm2.bias": (dim,), "mlp.fc1.weight": (4 * dim, dim), "mlp.fc1.bias": (4 * dim,),
              "mlp.fc2.weight": (dim, 4 * dim), "mlp.fc2.bias": (dim,),
              "ls2.gamma": (dim,)}  # fmt: skip
    assert set(shapes) == set(DINOV2_BLOCK_KEYS)
    for n in range(depth):
        for key, shape in shapes.items():
            sd[f"blocks.{n}.{key}"] = r(*shape)
    if registers:
        sd["register_tokens"] = r(1, registers, dim)
    return sd


def _fresh():
    torch.manual_seed(0)
    return build_model(TINY)


def test_dinov2_weights_land_where_the_spec_says(tmp_path):
    src = dinov2_state_dict()
    torch.save(src, tmp_path / "dinov2_vits14_pretrain.pth")
    model = _fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_dinov2(model, tmp_path / "dinov2_vits14_pretrain.pth")
    sd = model.state_dict()
    # Coverage: exactly the encoder side is initialised, nothing else changes.
    encoder_side = {
        k for k in sd
        if k.startswith(("encoder.", "encoder_cr_token", "encoder_pos_embeds",
                         "encoder_patch_proj."))
    }  # fmt: skip
    assert set(report["loaded"]) == encoder_side
    assert all(torch.equal(sd[k], before[k]) for k in sd if k not in encoder_side)
    assert report["ignored"] == ["mask_token"] and not report["notes"]
    # Round trip of every 1:1 tensor back to the DINOv2 layout.
    for n in range(5):
        for sub in DINOV2_BLOCK_KEYS:
            assert torch.equal(sd[f"encoder.blocks.{n}.{sub}"], src[f"blocks.{n}.{sub}"])
            if n < 3:  # the scale-map blocks start as copies of blocks 0..2 (spec §1.4)
                assert torch.equal(
                    sd[f"encoder.additional_blocks.{n}.{sub}"], src[f"blocks.{n}.{sub}"]
                )
    for level in (0, 1):
        assert torch.equal(
            sd[f"encoder_patch_proj.{level}.weight"], src["patch_embed.proj.weight"]
        )
        assert torch.equal(sd[f"encoder_patch_proj.{level}.bias"], src["patch_embed.proj.bias"])
    assert torch.equal(sd["encoder.norm.weight"], src["norm.weight"])
    # CLS with its position embedding already added.
    torch.testing.assert_close(
        sd["encoder_cr_token"], src["cls_token"][0] + src["pos_embed"][0, :1]
    )
    # Copies, not views: training the additional blocks must not move the main ones.
    assert (
        sd["encoder.additional_blocks.0.ls1.gamma"].data_ptr()
        != sd["encoder.blocks.0.ls1.gamma"].data_ptr()
    )


def _cubic_resize_1d(values: np.ndarray, out_size: int, scale: float) -> np.ndarray:
    """Reference cubic convolution (Keys, A = -0.75, edge taps clamped), output pixel i sampled at
    the input coordinate (i + 0.5) / scale - 0.5: what DINOv2 asks F.interpolate for with a scale
    factor."""
    A = -0.75

    def w(x):
        x = abs(x)
        return (
            ((A + 2) * x - (A + 3)) * x * x + 1
            if x <= 1
            else ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
        )

    out = np.zeros(out_size)
    for i in range(out_size):
        src = (i + 0.5) / scale - 0.5
        base = int(np.floor(src))
        for k in range(-1, 3):
            out[i] += w(src - (base + k)) * values[min(max(base + k, 0), len(values) - 1)]
    return out


def test_position_table_resize_uses_dinov2s_offset_sampling():
    """Tables varying along x only and along y only, against a hand-written cubic convolution
    sampling at the scale factor (F0 + 0.1) / M of DINOv2's interpolate_offset."""
    M, F0, dim = 37, 16, 64
    gen = np.random.default_rng(0)
    fx, fy = gen.normal(size=M), gen.normal(size=M)
    table = torch.zeros(M, M, dim)
    table[..., 0] = torch.from_numpy(fx).float()[None, :]  # varies with x
    table[..., 1] = torch.from_numpy(fy).float()[:, None]  # varies with y
    src = dinov2_state_dict()
    src["pos_embed"][0, 1:] = table.reshape(M * M, dim)
    model = _fresh()
    load_dinov2(model, src)
    pos = model.encoder_pos_embeds.detach().numpy()
    assert pos.shape == (F0, F0, dim)
    expected_x = _cubic_resize_1d(fx, F0, (F0 + 0.1) / M)
    expected_y = _cubic_resize_1d(fy, F0, (F0 + 0.1) / M)
    np.testing.assert_allclose(pos[:, :, 0], np.broadcast_to(expected_x, (F0, F0)), atol=1e-5)
    np.testing.assert_allclose(
        pos[:, :, 1], np.broadcast_to(expected_y[:, None], (F0, F0)), atol=1e-5
    )
    without_offset = _cubic_resize_1d(fx, F0, F0 / M)
    assert (
        np.abs(pos[0, :, 0] - without_offset).max() > 0.05
    )  # the +0.1 offset really changes the table


def test_dinov2_training_checkpoints_and_register_variants_convert():
    src = dinov2_state_dict(registers=4)
    chunked = {}
    for key, value in src.items():  # teacher checkpoint: backbone. prefix, chunked blocks
        if key.startswith("blocks."):
            n = int(key.split(".")[1])
            key = f"blocks.{n // 3}.{key.split('.', 1)[1]}"
        chunked[f"backbone.{key}"] = value
    model = _fresh()
    report = load_dinov2(model, {"teacher": chunked})
    assert "register_tokens" in report["ignored"] and "register" in report["notes"][0]
    assert torch.equal(
        model.state_dict()["encoder.blocks.4.mlp.fc2.bias"], src["blocks.4.mlp.fc2.bias"]
    )


def test_dinov2_mismatches_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a 5-block DINOv2 ViT.*found 12 blocks"):
        load_dinov2(_fresh(), dinov2_state_dict(depth=12))
    with pytest.raises(CheckpointError, match="do not fit the encoder.*embed_dim 64"):
        load_dinov2(_fresh(), dinov2_state_dict(dim=32))
    with pytest.raises(FileNotFoundError, match="dinov2_vitb14_pretrain.pth"):
        load_dinov2(_fresh(), tmp_path / "missing.pth")
    bad = dinov2_state_dict()
    bad["pos_embed"] = bad["pos_embed"][:, :-3]
    with pytest.raises(CheckpointError, match="not a square"):
        load_dinov2(_fresh(), bad)
