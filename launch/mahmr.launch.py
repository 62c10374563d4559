"""Start the mahmr node: ``ros2 launch mahmr_ros mahmr.launch.py image:=/camera/color/image_raw``.

Arguments remap the inputs (image, camera_info, depth), choose the parameter file and, optionally,
start RViz with the shipped ``config/humans.rviz``. The node configures and activates itself
(``autostart``), so a plain ``ros2 launch`` just works. ``camera_height`` overrides
``offline.camera_height_m`` of the parameter file only when given.

Every process started here (and by a launch file including this one, e.g. your camera driver's)
gets the Fast DDS profile ``config/fastdds.xml`` unless a profile is already set: camera-sized
messages then reach other processes (README, "Frames between processes").
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "mahmr_ros"
# Fast DDS 2 (Humble, Jazzy) reads the first, Fast DDS 3 (Kilted on) the second.
DDS_PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


def dds_profile_actions(share: str) -> list:
    """Set the Fast DDS profile for the processes started after these actions (a user's setting
    wins)."""
    profile = os.path.join(share, "config", "fastdds.xml")
    return [
        SetEnvironmentVariable(name, EnvironmentVariable(name, default_value=profile))
        for name in DDS_PROFILE_VARIABLES
    ]


def mahmr_node(context) -> list:
    """The node; ``offline.camera_height_m`` from ``camera_height`` only when that argument is
    given."""
    parameters = [LaunchConfiguration("params_file").perform(context)]
    camera_height = LaunchConfiguration("camera_height").perform(context)
    if camera_height:
        parameters.append({"offline.camera_height_m": float(camera_height)})
    node = Node(
        package=PACKAGE,
        executable="mahmr_node",
        name="mahmr",
        namespace=LaunchConfiguration("namespace"),
        parameters=parameters,
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("depth", LaunchConfiguration("depth")),
        ],
        output="screen",
        emulate_tty=True,
    )
    return [node]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw",
                              description="input sensor_msgs/Image topic"),
        DeclareLaunchArgument("camera_info", default_value="/camera/color/camera_info",
                              description="input sensor_msgs/CameraInfo topic (same stamps as "
                                  "image)"),
        DeclareLaunchArgument("depth", default_value="/camera/aligned_depth_to_color/image_raw",
                              description="registered depth (16UC1 mm / 32FC1 m) for dto.mode "
                                  "rgbd"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "mahmr.yaml"),
                              description="node parameters (every key documented in "
                                  "config/mahmr.yaml)"),
        DeclareLaunchArgument("camera_height", default_value="",
                              description="camera height above the floor (m) for the offline "
                                          "estimator; empty = offline.camera_height_m of "
                                          "params_file"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz with "
            "humans.rviz"),
    ]  # fmt: skip
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", os.path.join(share, "config", "humans.rviz")],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="screen",
    )
    return LaunchDescription(
        [*arguments, *dds_profile_actions(share), OpaqueFunction(function=mahmr_node), rviz]
    )
