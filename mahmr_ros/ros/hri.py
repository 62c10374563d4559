"""REP-155 (ROS4HRI) body topics, published when ``hri_msgs`` is installed.

- ``/humans/bodies/tracked`` (``hri_msgs/IdsList``): the ids of this frame;
- ``/humans/bodies/<id>/roi`` (``hri_msgs/NormalizedRegionOfInterest2D``): the box, normalised to
  [0, 1];
- ``/humans/bodies/<id>/skeleton2d`` (``hri_msgs/Skeleton2D``): the OpenPose COCO-18 keypoints
  projected from the body model's 3D joints with the camera the people were placed with.

Per-id publishers are made when an id appears and destroyed when it leaves, as ROS4HRI nodes do.
The ``body_<id>`` TF frames (REP-155 axes) come from the node's TF broadcaster, not from here.
"""

from __future__ import annotations

import numpy as np

from mahmr_ros.types import FrameResult, HumanEstimate

BODIES_NS = "/humans/bodies"
# COCO-18 (OpenPose) order -> body-model joint name (smplx SMPL names; Anny's COCO regressor uses
# the same).
COCO18_JOINTS = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "left_eye", "right_eye", "left_ear", "right_ear",
)  # fmt: skip


def coco18_keypoints(human: HumanEstimate, joint_names: list[str], K: np.ndarray) -> np.ndarray:
    """(18, 3) pixel x, y and confidence of the COCO-18 keypoints of one person.

    A keypoint whose joint the body model lacks, or that lies behind the camera, gets confidence 0.
    A missing ``neck`` is the mid-point of the shoulders (COCO-17 regressors have no neck).
    """
    index = {name: i for i, name in enumerate(joint_names)}
    joints = np.asarray(human.joints, np.float64).reshape(-1, 3)
    points = np.full((18, 3), np.nan)
    for k, name in enumerate(COCO18_JOINTS):
        if name in index and index[name] < len(joints):
            points[k] = joints[index[name]]
    if np.isnan(points[1]).any() and not np.isnan(points[[2, 5]]).any():
        points[1] = points[[2, 5]].mean(axis=0)
    out = np.zeros((18, 3))
    visible = ~np.isnan(points).any(axis=1) & (np.nan_to_num(points[:, 2]) > 1e-6)
    uvw = points[visible] @ np.asarray(K, np.float64).T
    out[visible, :2] = uvw[:, :2] / uvw[:, 2:3]
    out[visible, 2] = human.score
    return out


class HriPublisher:
    """Publishes the REP-155 body topics for each frame (made by ``make_hri_publisher``)."""

    def __init__(self, node, msgs):
        self._node = node
        self._msgs = msgs
        self.tracked_pub = node.create_publisher(msgs.IdsList, f"{BODIES_NS}/tracked", 1)
        self._per_id: dict[str, tuple] = {}

    def publishers(self) -> list:
        return [self.tracked_pub] + [p for pair in self._per_id.values() for p in pair]

    def publish(self, result: FrameResult, header, joint_names: list[str]) -> None:
        msgs = self._msgs
        ids = [h.track_id for h in result.humans if h.track_id]
        self.tracked_pub.publish(msgs.IdsList(header=header, ids=ids))
        for gone in set(self._per_id) - set(ids):
            for publisher in self._per_id.pop(gone):
                self._node.destroy_publisher(publisher)
        h_img, w_img = result.image_hw
        scale = np.array([max(w_img, 1), max(h_img, 1)], np.float64)
        for human in result.humans:
            if not human.track_id:
                continue
            if human.track_id not in self._per_id:
                base = f"{BODIES_NS}/{human.track_id}"
                self._per_id[human.track_id] = (
                    self._node.create_publisher(
                        msgs.NormalizedRegionOfInterest2D, f"{base}/roi", 1
                    ),
                    self._node.create_publisher(msgs.Skeleton2D, f"{base}/skeleton2d", 1),
                )
            roi_pub, skeleton_pub = self._per_id[human.track_id]
            x1, y1, x2, y2 = np.clip(
                np.asarray(human.bbox_xyxy, np.float64) / np.tile(scale, 2), 0.0, 1.0
            )
            roi_pub.publish(
                msgs.NormalizedRegionOfInterest2D(
                    header=header, xmin=x1, ymin=y1, xmax=x2, ymax=y2, c=float(human.score)
                )
            )
            keypoints = coco18_keypoints(human, joint_names, result.K_used)
            skeleton = msgs.Skeleton2D(header=header)
            skeleton.skeleton = [
                msgs.NormalizedPointOfInterest2D(
                    x=float(u / scale[0]), y=float(v / scale[1]), c=float(c)
                )
                for u, v, c in keypoints
            ]
            skeleton_pub.publish(skeleton)


def make_hri_publisher(node) -> HriPublisher | None:
    """An HriPublisher when ``hri_msgs`` is importable, else None (logged once)."""
    try:
        import hri_msgs.msg as msgs
    except ImportError:
        node.get_logger().info(
            "[mahmr] hri_msgs not installed: REP-155 /humans/bodies/* topics are not published"
        )
        return None
    return HriPublisher(node, msgs)
