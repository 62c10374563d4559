"""Height priors by age class and gender (spec dto §2.3, §3.4).

Class ids: 0 baby (< 3 y), 1 kid (3-8 y), 2 teen (8-15 y), 3 adult female, 4 adult male, 5 adult
neutral. Age and gender come from outside (e.g. a face/body attribute network run once per track);
without them the "no-gender" mode is used: adults get sigma 0.073 m around their own estimated
height, which carries no metric information by itself (the depth cue then decides).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# class id -> (mean height m, std m), spec dto §3.4 table.
HEIGHT_PRIORS_M: dict[int, tuple[float, float]] = {
    0: (0.801, 0.126),
    1: (1.122, 0.120),
    2: (1.477, 0.156),
    3: (1.647, 0.0707),
    4: (1.784, 0.0759),
    5: (1.715, 0.100),
}
CLASS_NAMES = ("baby", "kid", "teen", "adult_female", "adult_male", "adult_neutral")
NO_GENDER_SIGMA_M = 0.073
ADULT_CLASSES = (3, 4, 5)
CHILD_CLASSES = (0, 1, 2)


def age_class(age_years: float | None, p_male: float | None = None, use_age: bool = True) -> int:
    """Prior class from an age estimate and a gender probability (spec dto §2.3).

    Args:
        age_years: estimated age in years, or None (treated as adult).
        p_male: probability that the person is male in [0, 1], or None (neutral).
        use_age: False = adults only (classes 3/4/5), as the official MuPoTS setting.

    Returns:
        Class id 0..5.
    """
    if use_age and age_years is not None:
        if not np.isfinite(age_years) or age_years < 0:
            raise ValueError(
                f"[dto.priors] age_years must be a finite number >= 0, got {age_years}"
            )
        if age_years < 3:
            return 0
        if age_years < 8:
            return 1
        if age_years < 15:
            return 2
    if p_male is None:
        return 5
    if not 0.0 <= p_male <= 1.0:
        raise ValueError(f"[dto.priors] p_male is a probability in [0, 1], got {p_male}")
    if p_male < 0.33:
        return 3
    if p_male >= 0.67:
        return 4
    return 5


@dataclass(frozen=True)
class PersonPrior:
    """Externally supplied attributes of one person (per track; any field may be None = unknown).

    Attributes:
        age_class: class id 0..5 (wins over ``age_years``/``p_male``).
        age_years: estimated age, years.
        p_male: probability of male, [0, 1].
        height_m: a known metric height (e.g. a registered user); used with ``height_sigma_m``.
        height_sigma_m: std of ``height_m``, metres.
    """

    age_class: int | None = None
    age_years: float | None = None
    p_male: float | None = None
    height_m: float | None = None
    height_sigma_m: float = 0.02

    def resolved_class(self) -> int | None:
        if self.age_class is not None:
            if self.age_class not in HEIGHT_PRIORS_M:
                raise ValueError(f"[dto.priors] age_class must be 0..5, got {self.age_class}")
            return int(self.age_class)
        if self.age_years is None and self.p_male is None:
            return None
        return age_class(self.age_years, self.p_male)


def height_prior(
    h_m: np.ndarray, classes, use_gender: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per-person prior mean and std of the metric height (spec dto §3.4, with its modifications).

    Args:
        h_m: (P,) float, current (initial) T-pose heights, metres.
        classes: (P,) class ids 0..5, or None entries for unknown (= no-gender mode for that
            person).
        use_gender: True (official default): adults get mu = (h + mu_class) / 2; False: adults
            become class 5 with sigma 0.073 and mu = h (children keep their class prior in both
            modes).

    Returns:
        (mu_m, sigma_m): two (P,) float64 arrays, metres.
    """
    h = np.asarray(h_m, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"[dto.priors] heights must be finite and > 0 m, got {h.tolist()}")
    classes = list(classes)
    if len(classes) != len(h):
        raise ValueError(f"[dto.priors] {len(classes)} classes for {len(h)} heights")
    mu = np.empty_like(h)
    sigma = np.empty_like(h)
    for i, (hi, c) in enumerate(zip(h, classes)):
        if c is None or (not use_gender and c in ADULT_CLASSES):
            mu[i], sigma[i] = hi, NO_GENDER_SIGMA_M
            continue
        if c not in HEIGHT_PRIORS_M:
            raise ValueError(f"[dto.priors] class ids are 0..5 or None, got {c!r} for person {i}")
        mu_c, sigma_c = HEIGHT_PRIORS_M[c]
        mu[i] = 0.5 * (hi + mu_c) if c in ADULT_CLASSES else mu_c
        sigma[i] = sigma_c
    return mu, sigma
