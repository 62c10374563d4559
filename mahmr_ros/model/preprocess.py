"""Official input preprocessing (spec §3.1): resize the long side to ``input_size``, pad
bottom/right to multiples of 56 with black, BGR -> RGB, /255, ImageNet normalisation, CHW float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_MEAN_CHW = torch.from_numpy(IMAGENET_MEAN)[:, None, None]
_STD_CHW = torch.from_numpy(IMAGENET_STD)[:, None, None]
# SAT needs aligned 2x2 groups of 28-px cells (2 x 2 x patch 14).
PAD_MULTIPLE = 56


@dataclass(frozen=True)
class PreprocessMeta:
    """How an original image maps to the network input.

    Attributes:
        orig_hw: (H, W) original image size, pixels.
        resized_hw: (h', w') resized, unpadded size; sets the principal point and focal (spec
            §1.8).
        padded_hw: (Hp, Wp) network input size, multiples of 56.
        scale: r = input_size / max(H, W); resized pixel = r x original pixel (continuous
            coordinates).
        input_size: network long side the image was resized to.
    """

    orig_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    padded_hw: tuple[int, int]
    scale: float
    input_size: int

    def __getitem__(self, key: str):
        """Dict-style access (``meta["scale"]``), as api.md allows either."""
        return getattr(self, key)


def resized_size(orig_hw: tuple[int, int], input_size: int = 1288) -> tuple[int, int]:
    """(h', w') of the official resize: long side = input_size exactly, short side ``int(r x
    side)``."""
    H, W = orig_hw
    r = input_size / max(H, W)
    if W >= H:
        return int(r * H), input_size
    return input_size, int(r * W)


def preprocess(
    image_bgr: np.ndarray, input_size: int = 1288
) -> tuple[torch.Tensor, PreprocessMeta]:
    """Build the network input exactly as the official pipeline does.

    Args:
        image_bgr: (H, W, 3) uint8, OpenCV BGR order.
        input_size: network long side (1288 for the released models; a multiple of 56).

    Returns:
        tensor: (3, Hp, Wp) float32, normalised RGB; the padding holds -mean/std (black before
            normalising).
        meta: the ``PreprocessMeta`` needed to map outputs back to the original image.

    Raises:
        ValueError: not an HxWx3 uint8 array, or so elongated that the short side resizes to 0 px.
    """
    image = np.asarray(image_bgr)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"[model.preprocess] expected an (H, W, 3) BGR image, got shape {image.shape}"
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"[model.preprocess] expected uint8 pixels, got {image.dtype} (convert with astype)"
        )
    if input_size <= 0 or input_size % PAD_MULTIPLE:
        raise ValueError(
            f"[model.preprocess] input_size={input_size} must be a positive multiple of 56"
        )
    H, W = image.shape[:2]
    h, w = resized_size((H, W), input_size)
    if h < 1 or w < 1:
        raise ValueError(
            f"[model.preprocess] image {W}x{H} is too elongated: its short side becomes 0 px at "
            f"long side {input_size}; crop it to a saner aspect ratio"
        )
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    Hp = -(-h // PAD_MULTIPLE) * PAD_MULTIPLE
    Wp = -(-w // PAD_MULTIPLE) * PAD_MULTIPLE
    canvas = np.zeros((Hp, Wp, 3), dtype=np.uint8)  # pad BEFORE normalising (spec §8 #4)
    canvas[:h, :w] = resized
    # BGR -> RGB, channel-first, /255, normalise: the same float32 ops as the numpy formulation, in
    # place.
    tensor = torch.from_numpy(canvas).permute(2, 0, 1).flip(0).float()
    tensor = tensor.div_(255.0).sub_(_MEAN_CHW).div_(_STD_CHW)
    meta = PreprocessMeta(
        orig_hw=(H, W),
        resized_hw=(h, w),
        padded_hw=(Hp, Wp),
        scale=input_size / max(H, W),
        input_size=input_size,
    )
    return tensor, meta


def stack_batch(
    items: list[tuple[torch.Tensor, PreprocessMeta]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch preprocessed images of the same padded size.

    Args:
        items: ``preprocess`` outputs.

    Returns:
        images: (B, 3, Hp, Wp) float32; resized_hw: (B, 2) int64 (h', w').

    Raises:
        ValueError: padded sizes differ (extra padding would add scale-map cells and change
            results; run such images in separate batches).
    """
    sizes = {meta.padded_hw for _, meta in items}
    if len(sizes) != 1:
        raise ValueError(
            f"[model.preprocess] cannot batch different padded sizes {sorted(sizes)}; batch by "
            "size"
        )
    images = torch.stack([tensor for tensor, _ in items])
    resized_hw = torch.tensor([meta.resized_hw for _, meta in items], dtype=torch.int64)
    return images, resized_hw
