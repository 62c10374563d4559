import math

import torch

from mahmr_ros.model.decoder import DecoderLayer, inverse_sigmoid, sine_embed, sine_embed_2d


def test_sine_embed_hand_checked_values():
    pe = sine_embed(torch.tensor(0.5), 4)
    # k=0,1: omega = 20^0 = 1, e = 2 pi 0.5 = pi -> sin pi = 0, cos pi = -1.
    # k=2,3: omega = 20^(2/4) = sqrt(20), e = pi / sqrt(20) = 0.70248 -> sin = 0.64613, cos =
    # 0.76323.
    expected = torch.tensor([0.0, -1.0, 0.64613, 0.76323])
    assert torch.allclose(pe, expected, atol=1e-4)
    # Temperature 20, not 10000: at 10000 the k=2 value would be sin(pi / 100) = 0.0314.
    assert abs(pe[2].item() - math.sin(math.pi / 100)) > 0.5


def test_sine_embed_2d_puts_y_first():
    x, y = torch.tensor(0.2), torch.tensor(0.7)
    pe = sine_embed_2d(x, y, 6)
    assert torch.equal(pe[:6], sine_embed(y, 6)) and torch.equal(pe[6:], sine_embed(x, 6))


def test_inverse_sigmoid_clamps():
    x = torch.tensor([0.0, 0.25, 1.0])
    out = inverse_sigmoid(x)
    assert abs(out[0].item() - math.log(1e-5)) < 1e-4
    assert abs(out[1].item() - math.log(1 / 3)) < 1e-6
    assert abs(out[2].item() + math.log(1e-5)) < 1e-4


def test_only_first_layer_has_query_position_in_cross_attention():
    first = DecoderLayer(16, 2, 32, is_first=True)
    later = DecoderLayer(16, 2, 32, is_first=False)
    assert "ca_qpos_proj.weight" in first.state_dict()
    assert "ca_qpos_proj.weight" not in later.state_dict()


def test_cross_attention_uses_content_and_sine_halves_with_scale_of_their_width():
    """Reference computation by explicit matmuls: per head q = [Qc ; Qs], k = [Kc ; Kp], scale
    1/sqrt(2 d)."""
    torch.manual_seed(0)
    D, H, Q, N = 8, 2, 3, 5
    layer = DecoderLayer(D, H, 16, is_first=False).eval()
    q, qpos, qsine = torch.randn(1, Q, D), torch.randn(1, Q, D), torch.randn(1, Q, D)
    mem, mpos = torch.randn(1, N, D), torch.randn(1, N, D)
    out = layer(q, mem, mpos, qpos, qsine, None)

    def heads(x):
        return x.reshape(x.shape[0], x.shape[1], H, D // H).transpose(1, 2)

    def attend(qh, kh, vh):
        w = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1]), dim=-1)
        return (w @ vh).transpose(1, 2).reshape(1, qh.shape[2], D)

    t = layer.norm1(q)
    sa = attend(
        heads(layer.sa_qcontent_proj(t) + layer.sa_qpos_proj(qpos)),
        heads(layer.sa_kcontent_proj(t) + layer.sa_kpos_proj(qpos)),
        heads(layer.sa_v_proj(t)),
    )
    x = q + layer.sa_out_proj(sa)
    t = layer.norm2(x)
    qh = torch.cat([heads(layer.ca_qcontent_proj(t)), heads(layer.ca_qpos_sine_proj(qsine))], -1)
    kh = torch.cat([heads(layer.ca_kcontent_proj(mem)), heads(layer.ca_kpos_proj(mpos))], -1)
    assert qh.shape[-1] == 2 * D // H
    x = x + layer.ca_out_proj(attend(qh, kh, heads(layer.ca_v_proj(mem))))
    x = x + layer.linear2(torch.relu(layer.linear1(layer.norm3(x))))
    assert torch.allclose(out, x, atol=1e-5)
