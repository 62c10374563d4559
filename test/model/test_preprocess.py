import cv2
import numpy as np
import pytest
import torch

from mahmr_ros.model import preprocess, stack_batch

PAD_VALUE = -np.array([0.485, 0.456, 0.406]) / np.array(
    [0.229, 0.224, 0.225]
)  # black after normalising


@pytest.mark.parametrize(
    "hw,resized,padded",
    [
        ((720, 1280), (724, 1288), (728, 1288)),  # landscape: r = 1.00625, int(724.5) = 724
        ((1280, 720), (1288, 724), (1288, 728)),  # portrait
        ((33, 17), (1288, 663), (1288, 672)),  # tiny, upscaled: int(17 * 1288/33) = int(663.5)
        ((1000, 1000), (1288, 1288), (1288, 1288)),  # square
        ((500, 2000), (322, 1288), (336, 1288)),  # 4:1, short side not a multiple of 56
    ],
)
def test_resize_and_pad_sizes_follow_the_spec(hw, resized, padded):
    image = np.zeros((*hw, 3), np.uint8)
    tensor, meta = preprocess(image)
    assert meta.orig_hw == hw and meta.resized_hw == resized and meta.padded_hw == padded
    assert tensor.shape == (3, *padded) and tensor.dtype == torch.float32
    assert meta.scale == pytest.approx(1288 / max(hw))
    assert meta["scale"] == meta.scale


def test_pixels_are_normalised_rgb_and_padding_is_normalised_black():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)
    tensor, meta = preprocess(image, input_size=224)
    h, w = meta.resized_hw
    assert (h, w) == (124, 224) and meta.padded_hw == (168, 224)
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    expected = (resized[:, :, ::-1] / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert np.allclose(tensor[:, :h, :w].numpy(), expected.transpose(2, 0, 1), atol=1e-5)
    pad = tensor[:, h:, :].numpy()
    assert np.allclose(pad, PAD_VALUE[:, None, None], atol=1e-5)
    # Hand-checked: pure blue BGR (255, 0, 0) is RGB (0, 0, 1): R -> -2.1179, B -> (1 - .406)/.225
    # = 2.64.
    blue = np.zeros((56, 56, 3), np.uint8)
    blue[..., 0] = 255
    t, _ = preprocess(blue, input_size=56)
    assert abs(t[0, 0, 0].item() + 2.1179) < 1e-3 and abs(t[2, 0, 0].item() - 2.64) < 1e-3


@pytest.mark.parametrize(
    "bad,needle",
    [
        (np.zeros((10, 10), np.uint8), "H, W, 3"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((1, 4000, 3), np.uint8), "too elongated"),
    ],
)
def test_bad_images_are_clear_errors(bad, needle):
    with pytest.raises(ValueError, match=needle):
        preprocess(bad)


def test_stack_batch_requires_equal_padded_sizes():
    a = preprocess(np.zeros((720, 1280, 3), np.uint8), 224)
    b = preprocess(np.zeros((700, 1280, 3), np.uint8), 224)
    images, hw = stack_batch([a, b])
    # int() truncation of the float product, as the official resize: (224/1280) * 720 =
    # 125.99999999999999.
    assert images.shape == (2, 3, 168, 224) and hw.tolist() == [[125, 224], [122, 224]]
    with pytest.raises(ValueError, match="batch by size"):
        stack_batch([a, preprocess(np.zeros((224, 100, 3), np.uint8), 224)])
