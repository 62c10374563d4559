"""The Fast DDS profile for camera-sized frames (config/fastdds.xml) and who loads it
(mahmr_ros/ros/dds.py). Delivery itself is measured by benchmarks/bench_dds_delivery.py and tested
in test_graph_processes.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from mahmr_ros.ros.dds import PROFILE_VARIABLES, profile_path, use_large_frame_profile

NS = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


def test_the_profile_raises_the_shared_memory_segment_and_keeps_udp():
    root = ET.parse(profile_path()).getroot()
    transports = {
        t.findtext("f:transport_id", namespaces=NS): t
        for t in root.iterfind(".//f:transport_descriptor", NS)
    }
    shm = [t for t in transports.values() if t.findtext("f:type", namespaces=NS) == "SHM"]
    assert len(shm) == 1 and int(shm[0].findtext("f:segment_size", namespaces=NS)) >= 16 * 2**20
    assert any(
        t.findtext("f:type", namespaces=NS) == "UDPv4" for t in transports.values()
    )  # other machines
    participant = root.find(".//f:participant", NS)
    assert participant.get("is_default_profile") == "true"
    used = [e.text for e in participant.iterfind(".//f:userTransports/f:transport_id", NS)]
    assert set(used) == set(transports)


@pytest.mark.parametrize("rmw", [None, "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp"])
def test_our_processes_load_it_when_nothing_is_set(rmw):
    environ = {} if rmw is None else {"RMW_IMPLEMENTATION": rmw}
    assert use_large_frame_profile(environ) == str(profile_path())
    assert all(environ[name] == str(profile_path()) for name in PROFILE_VARIABLES)


@pytest.mark.parametrize(
    "environ",
    [{"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}, {"FASTDDS_DEFAULT_PROFILES_FILE": ""},
     {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}],
    ids=["user_profile", "opted_out", "other_rmw"],
)  # fmt: skip
def test_a_users_choice_is_left_alone(environ):
    before = dict(environ)
    assert use_large_frame_profile(environ) is None and environ == before
