"""Node parameters: one declaration each (description, range), read into a frozen ``NodeConfig``.

The same dotted keys are commented in ``config/mahmr.yaml`` (``test/test_static.py`` checks both agree) and
are accepted by ``mahmr_ros.pipeline.load_config``, so ``estimator``, ``model.*`` and ``dto.*`` go to the
Pipeline unchanged; ``input.*`` and ``publish.*`` belong to the node. ``PARAMETERS`` is plain data so tools
and tests can read it without rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMAGE_QOS_CHOICES = ("sensor_data", "reliable")


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: dotted name, default (its type is the parameter type), description, range."""

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    read_only: bool = False
    choices: tuple[str, ...] = ()


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("autostart", True, "configure and activate at start-up; false = wait for a lifecycle manager "
              "(configure = load the model, activate = subscribe and publish)", read_only=True),
    ParamSpec("estimator", "auto", "estimator: auto (mahmr if model.weights and model.smpl_path are set, "
              "else offline), mahmr, offline, or any registered name", read_only=True),
    ParamSpec("model.config", "fov_kid", "MA-HMR network config: fov_kid, fov or default", read_only=True),
    ParamSpec("model.weights", "", "path to the MA-HMR checkpoint (.bin/.pth); empty = none", read_only=True),
    ParamSpec("model.smpl_path", "", "path to the SMPL neutral model (.npz/.pkl); empty = none",
              read_only=True),
    ParamSpec("model.kid_template_path", "", "path to the SMIL kid template (.npy); empty = no kid blend",
              read_only=True),
    ParamSpec("model.conf_thresh", 0.3, "keep people with detection confidence > this (strict, as official)",
              0.0, 1.0, read_only=True),
    ParamSpec("model.device", "auto", "torch device: auto, cpu, cuda, cuda:N", read_only=True),
    ParamSpec("model.backend", "auto", "inference backend: auto, torch, onnx, tensorrt", read_only=True),
    ParamSpec("model.precision", "fp32", "inference precision: fp32, fp16, bf16", read_only=True),
    ParamSpec("dto.mode", "prior_only", "DTO refinement: off, prior_only (height prior, no depth), rgbd "
              "(subscribes to a registered depth image) or mono (relative depth from dto.depth_model)",
              read_only=True, choices=("off", "prior_only", "rgbd", "mono")),
    ParamSpec("dto.depth_model", "", "ONNX monocular depth model for dto.mode mono (e.g. your Depth Anything "
              "V2 export); empty = none", read_only=True),
    ParamSpec("offline.camera_height_m", 0.0, "offline estimator: camera height above the floor people "
              "stand on (m); > 0 sizes each person from their feet (recognises children); 0 = unknown", 0.0,
              20.0, read_only=True),
    ParamSpec("offline.camera_pitch_deg", 0.0, "offline estimator: downward tilt of the optical axis (deg), "
              "used with offline.camera_height_m", -90.0, 90.0, read_only=True),
    ParamSpec("tracking.reid_window_s", 1.0, "a person unseen for longer than this gets a new id (s)", 0.0,
              60.0, read_only=True),
    ParamSpec("tracking.max_distance_m", 1.0, "pelvis distance (after constant-velocity prediction) that "
              "costs as much as no box overlap (m)", 0.05, 10.0, read_only=True),
    ParamSpec("input.compressed", False, "subscribe to image/compressed (sensor_msgs/CompressedImage) "
              "instead of image", read_only=True),
    ParamSpec("input.image_qos", "sensor_data", "image and camera_info QoS: sensor_data (best effort) or "
              "reliable", read_only=True, choices=IMAGE_QOS_CHOICES),
    ParamSpec("input.qos_depth", 5, "history depth of the image and camera_info subscriptions", 1, 100,
              read_only=True),
    ParamSpec("input.use_camera_info", True, "use CameraInfo.k; false = let the estimator choose the camera "
              "(FoV head), camera_info is not subscribed", read_only=True),
    ParamSpec("input.sync_slop_s", 0.02, "max stamp difference (s) to pair an image with a CameraInfo",
              0.0, 1.0, read_only=True),
    ParamSpec("input.sync_queue_size", 10, "messages kept per topic while waiting for a partner", 1, 100,
              read_only=True),
    ParamSpec("input.lazy", True, "skip inference entirely while nobody subscribes to any output (meshes, "
              "markers, debug image, TF)"),
    ParamSpec("input.depth_slop_s", 0.05, "max stamp difference (s) to use a depth image with a colour image",
              0.0, 1.0, read_only=True),
    ParamSpec("input.camera_info_cache", False, "pair an image without a matching CameraInfo with the last "
              "CameraInfo received (latched or slow camera_info); uses the built-in synchronizer",
              read_only=True),
    ParamSpec("publish.vertices", True, "fill HumanMesh.vertices (V x 3 floats per person)"),
    ParamSpec("publish.tf", True, "broadcast body_<id> TF frames at the pelvis (REP-155 axes)"),
    ParamSpec("publish.joint_frames", False, "also broadcast <joint>_<id> TF frames per person"),
    ParamSpec("publish.debug_image", True, "publish ~/debug_image (meshes over the image) while subscribed"),
    ParamSpec("publish.hri", True, "REP-155 topics (/humans/bodies/...) when hri_msgs is installed"),
    ParamSpec("publish.markers", True, "publish ~/markers (mesh + label per person) while subscribed"),
    ParamSpec("publish.markers_max_rate_hz", 5.0, "max rate of ~/markers (Hz); 0 = every frame", 0.0, 100.0),
    ParamSpec("publish.markers_lifetime_s", 1.0, "markers vanish after this long without a new frame (s)",
              0.0, 60.0),
    ParamSpec("publish.meshes_depth", 10, "history depth of /humans/meshes (reliable, keep-last)", 1, 1000,
              read_only=True),
    ParamSpec("publish.warn_period_s", 5.0, "throttle period of per-frame warnings (s)", 0.1, 3600.0),
)  # fmt: skip


@dataclass(frozen=True)
class NodeConfig:
    """Typed, validated view of the node parameters (dotted names with ``_`` for ``.``)."""

    estimator: str = "auto"
    model: tuple[tuple[str, Any], ...] = ()
    autostart: bool = True
    dto_mode: str = "prior_only"
    dto_depth_model: str = ""
    offline_camera_height_m: float = 0.0
    offline_camera_pitch_deg: float = 0.0
    tracking_reid_window_s: float = 1.0
    tracking_max_distance_m: float = 1.0
    input_compressed: bool = False
    input_image_qos: str = "sensor_data"
    input_qos_depth: int = 5
    input_use_camera_info: bool = True
    input_lazy: bool = True
    input_depth_slop_s: float = 0.05
    input_sync_slop_s: float = 0.02
    input_sync_queue_size: int = 10
    input_camera_info_cache: bool = False
    publish_vertices: bool = True
    publish_tf: bool = True
    publish_joint_frames: bool = False
    publish_debug_image: bool = True
    publish_hri: bool = True
    publish_markers: bool = True
    publish_markers_max_rate_hz: float = 5.0
    publish_markers_lifetime_s: float = 1.0
    publish_meshes_depth: int = 10
    publish_warn_period_s: float = 5.0

    def pipeline_config(self) -> dict:
        """The nested dict ``Pipeline.from_config`` takes (estimator and its section, dto, tracking)."""
        dto = {"mode": self.dto_mode, "depth_model": self.dto_depth_model}
        tracking = {
            "reid_window_s": self.tracking_reid_window_s,
            "max_distance_m": self.tracking_max_distance_m,
        }
        offline = {"camera_pitch_deg": self.offline_camera_pitch_deg}
        if self.offline_camera_height_m > 0:
            offline["camera_height_m"] = self.offline_camera_height_m
        return {
            "estimator": self.estimator,
            "model": dict(self.model),
            "offline": offline,
            "dto": dto,
            "tracking": tracking,
        }


def config_from_values(values: dict[str, Any]) -> NodeConfig:
    """Dotted-name values (defaults for missing ones) -> NodeConfig; raises ValueError naming a bad value."""
    merged = {spec.name: spec.default for spec in PARAMETERS}
    merged.update(values)
    for spec in PARAMETERS:
        error = check_value(spec, merged[spec.name])
        if error:
            raise ValueError(error)
    model = tuple((k.split(".", 1)[1], v) for k, v in merged.items() if k.startswith("model."))
    fields = {k.replace(".", "_"): v for k, v in merged.items() if not k.startswith("model.")}
    fields.pop("estimator")
    return NodeConfig(estimator=merged["estimator"], model=model, **fields)


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """None if ``value`` is acceptable for ``spec``, else a message saying what is expected."""
    if spec.choices and value not in spec.choices:
        return f"[params] {spec.name}={value!r}: expected one of {', '.join(spec.choices)}"
    if spec.min_value is not None and value < spec.min_value:
        return f"[params] {spec.name}={value!r}: expected >= {spec.min_value}"
    if spec.max_value is not None and value > spec.max_value:
        return f"[params] {spec.name}={value!r}: expected <= {spec.max_value}"
    return None


def declare_parameters(node) -> None:
    """Declare every ``PARAMETERS`` entry on ``node`` with its descriptor (description, range, read-only)."""
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
                FloatingPointRange(from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0)
            ]
        node.declare_parameter(spec.name, spec.default, descriptor)


def read_config(node) -> NodeConfig:
    """Current parameter values of ``node`` -> NodeConfig (raises ValueError on a bad value)."""
    return config_from_values({spec.name: node.get_parameter(spec.name).value for spec in PARAMETERS})
