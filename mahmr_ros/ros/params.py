"""Node parameters: one declaration each (description, range), read into a frozen ``NodeConfig``.

Two kinds, one table (``PARAMETERS``, plain data: tools and tests read it without rclpy):

* the pipeline's keys (``estimator``, ``model.*``, ``dto.*``, ``offline.*``, ``tracking.*``) are
  generated from ``mahmr_ros.pipeline_config.SETTINGS``, the one place their defaults, ranges and
  descriptions live. They are read-only (start-up only). A core default of None ("not set") is the
  ROS value 0 / "" here.
* the node's own keys (``autostart``, ``input.*``, ``publish.*``) are declared below.

``config/mahmr.yaml`` and the README's table are generated from ``PARAMETERS``
(``tools/write_params_yaml.py``; ``test/test_static.py`` keeps them equal), and the same file is
accepted by ``Pipeline.from_config``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mahmr_ros.pipeline_config import SETTINGS, Setting, load_config

IMAGE_QOS_CHOICES = ("auto", "sensor_data", "reliable")
INTRINSICS_CHOICES = ("auto", "k", "p")


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: dotted name, default (its type is the parameter type), description,
    range."""

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    read_only: bool = False
    choices: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        """The NodeConfig field of a node parameter (``input.qos_depth`` ->
        ``input_qos_depth``)."""
        return self.name.replace(".", "_")


def _from_setting(setting: Setting) -> ParamSpec:
    """The ROS parameter of a pipeline setting (start-up only; None defaults become 0 / "")."""
    default, description = setting.default, setting.description
    if default is None:
        default = setting.value_type()
        description += f" ({default!r} = unset)" if default != "" else ' ("" = unset)'
    return ParamSpec(setting.key, default, description, setting.min_value, setting.max_value, True,
                     setting.choices)  # fmt: skip


NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("input.compressed", False, "subscribe to image/compressed "
              "(sensor_msgs/CompressedImage) instead of image", read_only=True),
    ParamSpec("input.image_qos", "auto", "image, camera_info and depth QoS: auto (subscribe once "
              "a topic has a publisher: reliable when all its publishers are, else best effort; a "
              "best-effort publisher joining later switches it to best effort), sensor_data (best "
              "effort) or reliable",
              read_only=True, choices=IMAGE_QOS_CHOICES),
    ParamSpec("input.qos_depth", 5, "history depth of the image and camera_info "
              "subscriptions", 1, 100,
              read_only=True),
    ParamSpec("input.use_camera_info", True, "use CameraInfo intrinsics; false = let the "
              "estimator choose the camera (FoV head), camera_info is not "
              "subscribed", read_only=True),
    ParamSpec("input.intrinsics", "auto", "which CameraInfo matrix describes the image: k (raw "
              "image; a non-zero distortion d is warned about, not undone), p (rectified image, "
              "image_rect*: P[:3,:3]) or auto (p when the image topic name contains 'rect', else "
              "k)", read_only=True,
              choices=INTRINSICS_CHOICES),
    ParamSpec("input.sync_slop_s", 0.02, "max stamp difference (s) to pair an image with a "
              "CameraInfo",
              0.0, 1.0, read_only=True),
    ParamSpec("input.sync_queue_size", 10, "messages kept per topic while waiting for a "
              "partner", 1, 100,
              read_only=True),
    ParamSpec("input.lazy", True, "skip inference entirely while nobody subscribes to any output "
              "(meshes, markers, debug image, REP-155 topics; TF listeners do not count: a robot "
              "always has one)"),
    ParamSpec("input.depth_slop_s", 0.05, "max stamp difference (s) to use a depth image with a "
              "colour image",
              0.0, 1.0, read_only=True),
    ParamSpec("input.depth_wait_s", 0.2, "dto.mode rgbd: how long a colour frame waits for its "
              "depth image (s); after that it is processed with the height prior "
              "only", 0.0, 2.0, read_only=True),
    ParamSpec("input.camera_info_cache", False, "pair an image without a matching CameraInfo with "
              "the last CameraInfo received (latched or slow camera_info); uses the built-in "
              "synchronizer",
              read_only=True),
    ParamSpec("publish.vertices", True, "fill HumanMesh.vertices (V x 3 floats per person)"),
    ParamSpec("publish.tf", True, "broadcast body_<id> TF frames at the pelvis (REP-155 axes)"),
    ParamSpec("publish.joint_frames", False, "also broadcast <joint>_<id> TF frames per person"),
    ParamSpec("publish.floor_frame", "humans_floor", "TF frame of the floor the people stand on "
              "(the offline estimator's estimated or given floor; REP-103 axes, origin below the "
              "camera, parent = image frame); empty = not broadcast"),
    ParamSpec("publish.debug_image", True, "publish ~/debug_image (meshes over the image) while "
        "subscribed"),
    ParamSpec("publish.hri", True, "REP-155 topics (/humans/bodies/...) when hri_msgs is "
        "installed"),
    ParamSpec("publish.markers", True, "publish ~/markers (mesh + label per person) while "
        "subscribed"),
    ParamSpec("publish.markers_max_rate_hz", 5.0, "max rate of ~/markers (Hz); 0 = every "
        "frame", 0.0, 100.0),
    ParamSpec("publish.markers_lifetime_s", 1.0, "markers vanish after this long without a new "
              "frame (s)",
              0.0, 60.0),
    ParamSpec("publish.meshes_depth", 10, "history depth of /humans/meshes (reliable, "
              "keep-last)", 1, 1000,
              read_only=True),
    ParamSpec("publish.warn_period_s", 5.0, "throttle period of per-frame warnings "
        "(s)", 0.1, 3600.0),
)  # fmt: skip

AUTOSTART = ParamSpec(
    "autostart",
    True,
    "configure and activate at start-up; false = wait for a lifecycle manager (configure = load "
    "the model, activate = subscribe and publish)",
    read_only=True,
)
PIPELINE_PARAMETERS: tuple[ParamSpec, ...] = tuple(_from_setting(s) for s in SETTINGS)
#: Every parameter the node declares, in the order of config/mahmr.yaml and the README.
PARAMETERS: tuple[ParamSpec, ...] = (AUTOSTART, *PIPELINE_PARAMETERS, *NODE_PARAMETERS)
PARAMETER_NAMES = frozenset(spec.name for spec in PARAMETERS)


@dataclass(frozen=True)
class NodeConfig:
    """Typed view of the parameters, built only by ``config_from_values`` (defaults live in
    PARAMETERS).

    The node's own parameters are fields (``input.qos_depth`` -> ``input_qos_depth``); the
    pipeline's are kept in ``pipeline_values`` and given to the Pipeline as a nested dict by
    ``pipeline_config``.
    """

    autostart: bool
    input_compressed: bool
    input_image_qos: str
    input_qos_depth: int
    input_use_camera_info: bool
    input_intrinsics: str
    input_sync_slop_s: float
    input_sync_queue_size: int
    input_lazy: bool
    input_depth_slop_s: float
    input_depth_wait_s: float
    input_camera_info_cache: bool
    publish_vertices: bool
    publish_tf: bool
    publish_joint_frames: bool
    publish_floor_frame: str
    publish_debug_image: bool
    publish_hri: bool
    publish_markers: bool
    publish_markers_max_rate_hz: float
    publish_markers_lifetime_s: float
    publish_meshes_depth: int
    publish_warn_period_s: float
    pipeline_values: tuple[
        tuple[str, Any], ...
    ]  # (dotted key, ROS value) of every pipeline parameter

    def pipeline_value(self, key: str) -> Any:
        """The ROS value of a pipeline parameter, e.g. ``pipeline_value("dto.mode")``."""
        return dict(self.pipeline_values)[key]

    @property
    def dto_mode(self) -> str:
        return self.pipeline_value("dto.mode")

    def pipeline_config(self) -> dict:
        """The nested dict ``Pipeline.from_config`` takes (a ROS 0 / "" of a None-default key:
        None)."""
        config: dict = {}
        for spec, setting in zip(PIPELINE_PARAMETERS, SETTINGS, strict=True):
            value = self.pipeline_value(spec.name)
            if setting.default is None and not value:
                value = None
            section, _, name = spec.name.rpartition(".")
            (config.setdefault(section, {}) if section else config)[name] = value
        return config


def config_from_values(values: dict[str, Any]) -> NodeConfig:
    """Dotted-name values (defaults for missing ones) -> NodeConfig.

    Raises:
        ValueError: an unknown name (the message lists the valid ones) or a bad value (it says what
            is expected); the pipeline's keys are also checked by ``pipeline_config.load_config``.
    """
    unknown = sorted(set(values) - PARAMETER_NAMES)
    if unknown:
        valid = ", ".join(spec.name for spec in PARAMETERS)
        raise ValueError(f"[params] unknown parameter(s) {', '.join(unknown)} (valid: {valid})")
    merged = {spec.name: spec.default for spec in PARAMETERS}
    merged.update(values)
    for spec in PARAMETERS:
        error = check_value(spec, merged[spec.name])
        if error:
            raise ValueError(error)
    node_fields = {spec.field: merged[spec.name] for spec in (AUTOSTART, *NODE_PARAMETERS)}
    pipeline_values = tuple((spec.name, merged[spec.name]) for spec in PIPELINE_PARAMETERS)
    config = NodeConfig(**node_fields, pipeline_values=pipeline_values)
    load_config(
        config.pipeline_config()
    )  # the core's own checks (types, ranges), with its messages
    return config


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """None if ``value`` is acceptable for ``spec``, else a message saying what is expected."""
    expected = type(spec.default)
    if isinstance(value, bool) != (expected is bool) or not isinstance(
        value, (float, int) if expected is float else expected
    ):
        return (
            f"[params] {spec.name}={value!r}: expected {expected.__name__}, "
            f"got {type(value).__name__}"
        )
    if spec.choices and value not in spec.choices:
        return f"[params] {spec.name}={value!r}: expected one of {', '.join(spec.choices)}"
    if spec.min_value is not None and value < spec.min_value:
        return f"[params] {spec.name}={value!r}: expected >= {spec.min_value}"
    if spec.max_value is not None and value > spec.max_value:
        return f"[params] {spec.name}={value!r}: expected <= {spec.max_value}"
    return None


def declare_parameters(node) -> None:
    """Declare every ``PARAMETERS`` entry on ``node`` with its descriptor (description, range,
    read-only)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    for spec in PARAMETERS:
        descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
        if spec.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
        if (
            spec.min_value is not None
            and isinstance(spec.default, int)
            and not isinstance(spec.default, bool)
        ):
            descriptor.integer_range = [
                IntegerRange(from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)
            ]
        elif spec.min_value is not None and isinstance(spec.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0
                )
            ]
        node.declare_parameter(spec.name, spec.default, descriptor)


def read_config(node) -> NodeConfig:
    """Current parameter values of ``node`` -> NodeConfig (raises ValueError on a bad value)."""
    return config_from_values(
        {spec.name: node.get_parameter(spec.name).value for spec in PARAMETERS}
    )
