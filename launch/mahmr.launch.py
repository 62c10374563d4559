"""Start the mahmr node: ``ros2 launch mahmr_ros mahmr.launch.py image:=/camera/color/image_raw``.

Arguments remap the inputs (image, camera_info, depth), choose the parameter file and, optionally, start RViz
with the shipped ``config/humans.rviz``. The node configures and activates itself (``autostart``), so a
plain ``ros2 launch`` just works.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "mahmr_ros"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw",
                              description="input sensor_msgs/Image topic"),
        DeclareLaunchArgument("camera_info", default_value="/camera/color/camera_info",
                              description="input sensor_msgs/CameraInfo topic (same stamps as image)"),
        DeclareLaunchArgument("depth", default_value="/camera/aligned_depth_to_color/image_raw",
                              description="registered depth (16UC1 mm / 32FC1 m) for dto.mode rgbd"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "mahmr.yaml"),
                              description="node parameters (every key documented in config/mahmr.yaml)"),
        DeclareLaunchArgument("camera_height", default_value="0.0",
                              description="camera height above the floor (m); 0 = unknown"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz with humans.rviz"),
    ]  # fmt: skip
    camera_height = LaunchConfiguration("camera_height")
    node = Node(
        package=PACKAGE,
        executable="mahmr_node",
        name="mahmr",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {"offline.camera_height_m": ParameterValue(camera_height, value_type=float)},
        ],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("depth", LaunchConfiguration("depth")),
        ],
        output="screen",
        emulate_tty=True,
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", os.path.join(share, "config", "humans.rviz")],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="screen",
    )
    return LaunchDescription([*arguments, node, rviz])
