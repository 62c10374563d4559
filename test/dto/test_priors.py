"""Height priors and age/gender classes (spec dto §2.3, §3.4)."""

import numpy as np
import pytest

from mahmr_ros.dto.priors import HEIGHT_PRIORS_M, PersonPrior, age_class, height_prior


@pytest.mark.parametrize(
    "age, p_male, expected",
    [
        (1, None, 0),
        (3, 0.9, 1),
        (7.9, None, 1),
        (8, None, 2),
        (14.9, 0.1, 2),
        (15, 0.1, 3),
        (40, 0.5, 5),
        (40, 0.67, 4),
        (40, None, 5),
        (None, 0.2, 3),
    ],
)
def test_age_class_splits(age, p_male, expected):
    assert age_class(age, p_male) == expected


def test_age_prior_disabled_keeps_adult_classes():
    assert age_class(5, 0.9, use_age=False) == 4


def test_gender_mode_averages_adults_and_uses_class_for_children():
    h = np.array([1.60, 1.90, 1.30, 1.75])
    mu, sigma = height_prior(h, [3, 4, 1, None])
    assert mu[0] == pytest.approx((1.60 + 1.647) / 2) and sigma[0] == HEIGHT_PRIORS_M[3][1]
    assert mu[1] == pytest.approx((1.90 + 1.784) / 2)
    assert mu[2] == HEIGHT_PRIORS_M[1][0] and sigma[2] == HEIGHT_PRIORS_M[1][1]
    assert mu[3] == 1.75 and sigma[3] == 0.073  # unknown: no-gender mode around the own height


def test_no_gender_mode_turns_adults_into_own_height():
    mu, sigma = height_prior([1.6, 1.2], [4, 0], use_gender=False)
    assert mu.tolist() == [1.6, HEIGHT_PRIORS_M[0][0]] and sigma[0] == 0.073


def test_person_prior_resolution_and_errors():
    assert PersonPrior(age_years=30, p_male=0.9).resolved_class() == 4
    assert PersonPrior().resolved_class() is None
    with pytest.raises(ValueError, match="0..5"):
        PersonPrior(age_class=9).resolved_class()
    with pytest.raises(ValueError, match="> 0 m"):
        height_prior([0.0], [5])
    with pytest.raises(ValueError, match="probability"):
        age_class(30, 1.5)
