"""Tracker on a synthetic crowd sequence (mahmr_ros.testing.crowd): people walk, cross and briefly
vanish."""

from __future__ import annotations

import numpy as np
import pytest

from mahmr_ros.testing.crowd import make_crowd
from mahmr_ros.tracking import Tracker

FPS = 15.0


def _moved(human, offset, K):
    """The person translated by ``offset`` (m, camera frame), box re-projected from the moved
    vertices."""
    vertices = human.vertices + offset
    uv = vertices @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    box = [*uv.min(axis=0), *uv.max(axis=0)]
    return human.replace(vertices=vertices, joints=human.joints + offset,
                         pelvis=human.pelvis + offset, transl=human.transl + offset, bbox_xyxy=box,
                         track_id="")  # fmt: skip


@pytest.fixture(scope="module")
def scene():
    return make_crowd(4, seed=5, num_vertices=800, depth_range_m=(2.0, 8.0))


def _sequence(scene, frames=30, seed=0):
    """Per frame, the people (shuffled) and their true index; persons 0 and 1 walk towards each
    other."""
    rng = np.random.default_rng(seed)
    K = scene.K
    people = scene.truth
    velocity = rng.uniform(-0.4, 0.4, (len(people), 3)) * [1, 0, 1]
    order = np.argsort([p.pelvis[0] for p in people])
    velocity[order[0], 0], velocity[order[-1], 0] = (
        1.2,
        -1.2,
    )  # the outermost two cross the whole scene
    for f in range(frames):
        t = f / FPS
        moved = [(_moved(p, velocity[i] * t, K), i) for i, p in enumerate(people)]
        rng.shuffle(moved)
        yield t, moved


def test_ids_stay_with_their_person_while_walking_and_crossing(scene):
    tracker = Tracker()
    identity: dict[int, str] = {}
    for t, moved in _sequence(scene):
        humans = tracker.update([h for h, _ in moved], t)
        for human, (_, truth_index) in zip(humans, moved):
            assert human.track_id and human.track_id[0].isalpha()
            assert identity.setdefault(truth_index, human.track_id) == human.track_id, (
                f"id switch at t={t:.2f}"
            )
    assert len(set(identity.values())) == len(scene.truth)


def test_a_person_missed_for_a_few_frames_keeps_the_id(scene):
    tracker = Tracker(reid_window_s=0.5)
    ids = {}
    for f, (t, moved) in enumerate(_sequence(scene, frames=20)):
        visible = [
            (h, i) for h, i in moved if not (i == 2 and 8 <= f < 12)
        ]  # person 2 hidden 4 frames
        humans = tracker.update([h for h, _ in visible], t)
        for human, (_, i) in zip(humans, visible):
            assert ids.setdefault(i, human.track_id) == human.track_id


def test_a_person_gone_longer_than_the_window_gets_a_new_id(scene):
    tracker = Tracker(reid_window_s=0.2)
    seen = {}
    for f, (t, moved) in enumerate(_sequence(scene, frames=20)):
        visible = [
            (h, i) for h, i in moved if not (i == 2 and 5 <= f < 12)
        ]  # hidden 7 frames = 0.47 s
        for human, (_, i) in zip(tracker.update([h for h, _ in visible], t), visible):
            seen.setdefault(i, []).append(human.track_id)
    assert len(set(seen[2])) == 2 and all(len(set(v)) == 1 for i, v in seen.items() if i != 2)
