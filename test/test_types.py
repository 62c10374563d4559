"""HumanEstimate / FrameResult: renamed fields keep deprecated aliases; typed fields are
validated."""

import numpy as np
import pytest

from mahmr_ros.types import HumanEstimate


def _human(**changes) -> HumanEstimate:
    return HumanEstimate(
        score=0.9,
        bbox_xyxy=(0, 0, 10, 20),
        rotmats=np.tile(np.eye(3), (24, 1, 1)),
        betas=np.zeros(11),
        transl=(0, 0, 3),
        vertices=np.zeros((4, 3)),
        joints=np.zeros((24, 3)),
        focal=(500, 500),
        principal_point=(320, 240),
        height_m=1.7,
        is_child=False,
        **changes,
    )


@pytest.mark.parametrize(
    "old, new, value", [("scale", "dto_scale", 1.25), ("quality", "dto_height_z", 0.5)]
)
def test_renamed_dto_fields_read_write_and_replace_through_the_old_name_with_a_warning(
    old, new, value
):
    h = _human(**{new: value})
    message = f"HumanEstimate.{old} is deprecated, use HumanEstimate.{new}"
    with pytest.warns(DeprecationWarning, match=message):
        assert getattr(h, old) == value
    with pytest.warns(DeprecationWarning, match=new):
        moved = h.replace(**{old: 2 * value})
    assert getattr(moved, new) == 2 * value and getattr(h, new) == value
    with pytest.warns(DeprecationWarning, match=new):
        setattr(h, old, 3 * value)
    assert getattr(h, new) == 3 * value


def test_new_dto_field_defaults_mean_not_refined():
    h = _human()
    assert h.dto_scale == 1.0 and np.isnan(h.dto_height_z) and h.height_sigma_m is None


@pytest.mark.parametrize("bad", [0.0, -0.01, float("nan")])
def test_measured_height_sigma_must_be_positive(bad):
    with pytest.raises(ValueError, match="height_sigma_m must be > 0 m or None"):
        _human(height_sigma_m=bad)
    assert _human(height_sigma_m=np.float32(0.03)).height_sigma_m == pytest.approx(0.03)
