"""Shared fixtures of the offline estimator tests.

They need the cached assets that ``make setup`` builds (``python -m mahmr_ros.offline.assets``);
without them the fixtures fail with ``AssetError`` naming the missing file, which is the intended
message.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anny_body():
    from mahmr_ros.offline.anny_body import AnnyBody

    return AnnyBody()


@pytest.fixture(scope="session")
def sample():
    from mahmr_ros.offline.sample import load_sample

    return load_sample()


@pytest.fixture(scope="session")
def estimator():
    from mahmr_ros.offline.estimator import OfflineEstimator

    est = OfflineEstimator()
    yield est
    est.close()
