"""Colour descriptor of a person's box: same clothes -> near 0, other clothes -> far, bad boxes ->
None."""

import numpy as np
import pytest

from mahmr_ros.appearance import SIZE, appearance_descriptor, appearance_distance


def dressed(shirt_bgr, trousers_bgr, shape=(300, 200)) -> np.ndarray:
    """A grey image with one person-shaped box: shirt from 20 % to 50 % of its height, trousers
    below."""
    image = np.full((*shape, 3), 128, np.uint8)
    image[60:150, 50:130] = shirt_bgr
    image[150:260, 50:130] = trousers_bgr
    return image


BOX = np.array([50.0, 20.0, 130.0, 280.0])


def test_same_clothes_are_close_and_other_clothes_far():
    red_blue = appearance_descriptor(dressed((30, 30, 200), (160, 60, 20)), BOX)
    assert red_blue.shape == (SIZE,) and red_blue.sum() == pytest.approx(1.0)
    # the same person a few pixels away and with some sensor noise
    rng = np.random.default_rng(0)
    moved = dressed((30, 30, 200), (160, 60, 20))
    moved = np.clip(moved + rng.normal(0, 4, moved.shape), 0, 255).astype(np.uint8)
    again = appearance_descriptor(moved, BOX + [3, 2, 3, 2])
    assert appearance_distance(red_blue, again) < 0.15
    # same shirt, other trousers: about half of the histogram differs; other shirt and trousers:
    # all of it
    other_legs = appearance_descriptor(dressed((30, 30, 200), (20, 160, 20)), BOX)
    other_all = appearance_descriptor(dressed((200, 200, 200), (20, 20, 20)), BOX)
    assert 0.3 < appearance_distance(red_blue, other_legs) < 0.7
    assert appearance_distance(red_blue, other_all) > 0.9
    assert appearance_distance(red_blue, red_blue) == pytest.approx(0.0, abs=1e-6)


def test_boxes_without_pixels_have_no_descriptor():
    image = dressed((30, 30, 200), (160, 60, 20))
    assert (
        appearance_descriptor(image, np.array([300.0, 10.0, 400.0, 200.0])) is None
    )  # outside the image
    assert appearance_descriptor(image, np.array([50.0, 20.0, 51.0, 280.0])) is None  # too thin
    partly = appearance_descriptor(
        image, np.array([150.0, 250.0, 250.0, 450.0])
    )  # cut by the border
    assert partly is not None and partly.sum() == pytest.approx(1.0)
