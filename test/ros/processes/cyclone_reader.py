"""A third-party DDS reader: Eclipse Cyclone DDS (PyPI ``cyclonedds``) with hand-written IDL types
for ``mahmr_ros/HumanMeshArray``, no ROS. Prints one JSON line per message received on
``rt/humans/meshes`` (stamp, body_model, people, first pelvis) until ``--count`` messages or
``--timeout`` seconds.

The types follow the ROS 2 IDL mapping (``pkg::msg::dds_::Type_``; ``float32[]`` -> sequence,
``float64[9]`` -> array) of msg/HumanMesh.msg and msg/HumanMeshArray.msg and their dependencies.
"""

# no `from __future__ import annotations`: cyclonedds reads the field types at runtime
import argparse
import json
import time
from dataclasses import dataclass

from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float32, float64, int32, sequence, uint32
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time
    frame_id: str


@dataclass
class RegionOfInterest(IdlStruct, typename="sensor_msgs::msg::dds_::RegionOfInterest_"):
    x_offset: uint32
    y_offset: uint32
    height: uint32
    width: uint32
    do_rectify: bool


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64
    y: float64
    z: float64
    w: float64


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point
    orientation: Quaternion


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64
    y: float64
    z: float64


@dataclass
class HumanMesh(IdlStruct, typename="mahmr_ros::msg::dds_::HumanMesh_"):
    id: str
    confidence: float32
    roi: RegionOfInterest
    pelvis: Pose
    translation: Vector3
    height_m: float32
    is_child: bool
    shape: sequence[float32]
    pose: sequence[float32]
    joints: sequence[float32]
    vertices: sequence[float32]
    depth_sigma_m: float32
    velocity: Vector3


@dataclass
class HumanMeshArray(IdlStruct, typename="mahmr_ros::msg::dds_::HumanMeshArray_"):
    header: Header
    body_model: str
    k: array[float64, 9]
    k_estimated: bool
    humans: sequence[HumanMesh]
    processing_ms: float32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    participant = DomainParticipant(0)
    topic = Topic(participant, "rt/humans/meshes", HumanMeshArray)
    reader = DataReader(
        participant, topic, qos=Qos(Policy.Reliability.Reliable(0), Policy.History.KeepLast(10))
    )
    received, end = 0, time.monotonic() + args.timeout
    while received < args.count and time.monotonic() < end:
        for msg in reader.take(N=10):
            received += 1
            first = msg.humans[0].pelvis.position if msg.humans else None
            line = {"stamp": [msg.header.stamp.sec, msg.header.stamp.nanosec],
                    "frame_id": msg.header.frame_id, "body_model": msg.body_model,
                    "people": len(msg.humans),
                    "pelvis": [first.x, first.y, first.z] if first else None}  # fmt: skip
            print(json.dumps(line), flush=True)
        time.sleep(0.02)


if __name__ == "__main__":
    main()
