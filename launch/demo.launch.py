"""Demo: the mahmr node on a live camera or the bundled sample, with RViz.

``ros2 launch mahmr_ros demo.launch.py`` replays the bundled sample frame (``mahmr_demo_player``)
into the node and opens RViz;
``ros2 launch mahmr_ros demo.launch.py use_player:=false image:=/my/image camera_info:=/my/info``
runs on a real camera instead. Everything else is ``mahmr.launch.py``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
    SetEnvironmentVariable,
)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "mahmr_ros"
DDS_PROFILE_VARIABLES = (
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_DEFAULT_PROFILES_FILE",
)  # as mahmr.launch.py
SAMPLE_CAMERA_HEIGHT_M = (
    "1.2"  # the bundled sample's camera (mahmr_ros.offline.sample.CAMERA_HEIGHT_M)
)


def include_mahmr(context, share: str) -> list:
    """mahmr.launch.py; the sample's camera height when the player plays it and none was given."""
    camera_height = LaunchConfiguration("camera_height").perform(context)
    if not camera_height and LaunchConfiguration("use_player").perform(context).lower() == "true":
        camera_height = SAMPLE_CAMERA_HEIGHT_M
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "mahmr.launch.py")),
        launch_arguments={
            "image": LaunchConfiguration("image"),
            "camera_info": LaunchConfiguration("camera_info"),
            "rviz": LaunchConfiguration("rviz"),
            "camera_height": camera_height,
        }.items(),
    )
    return [include]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument("use_player", default_value="true",
                              description="publish the bundled sample frame at 2 Hz as the "
                                  "camera"),
        DeclareLaunchArgument("image", default_value="/demo/image",
                              description="input sensor_msgs/Image topic"),
        DeclareLaunchArgument("camera_info", default_value="/demo/camera_info",
                              description="input sensor_msgs/CameraInfo topic"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz with "
            "humans.rviz"),
        DeclareLaunchArgument("camera_height", default_value="",
                              description="camera height above the floor (m); empty = the bundled "
                                          "sample's 1.2 m with the player, else the params "
                                          "file's"),
    ]  # fmt: skip
    player = Node(
        package=PACKAGE,
        executable="mahmr_demo_player",
        name="demo_player",
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
        ],
        condition=IfCondition(LaunchConfiguration("use_player")),
        output="screen",
    )
    # The player sends 921 KB frames to another process: Fast DDS needs the profile in the
    # publisher.
    profile = os.path.join(share, "config", "fastdds.xml")
    dds_profile = [
        SetEnvironmentVariable(name, EnvironmentVariable(name, default_value=profile))
        for name in DDS_PROFILE_VARIABLES
    ]
    mahmr = OpaqueFunction(function=include_mahmr, args=[share])
    return LaunchDescription([*arguments, *dds_profile, player, mahmr])
