import math

import torch

from mahmr_ros.model.vit import Block


def test_block_matches_explicit_pre_norm_attention_with_layerscale():
    torch.manual_seed(0)
    block = Block(dim=8, num_heads=2).eval()
    with torch.no_grad():
        block.ls1.gamma.fill_(0.5)
        block.ls2.gamma.fill_(2.0)
    x = torch.randn(2, 5, 8)
    t = block.norm1(x)
    q, k, v = block.attn.qkv(t).reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(4), dim=-1)
    y = x + 0.5 * block.attn.proj((w @ v).transpose(1, 2).reshape(2, 5, 8))
    h = block.mlp.fc2(torch.nn.functional.gelu(block.mlp.fc1(block.norm2(y))))
    assert torch.allclose(block(x), y + 2.0 * h, atol=1e-5)
    assert block.norm1.eps == 1e-6
