"""MahmrNode: image (+ CameraInfo) in; HumanMeshArray, topology, TF, markers out. A thin shell over Pipeline.

Data flow (callbacks only hand frames over; a worker thread does the slow work):

    image ──────┐ pair by stamp  one slot, latest frame
    camera_info ┼────────────► LatestFrameWorker ─► decode ─► Pipeline.process ─► /humans/meshes
    depth ──────┘ (sync.py)    (stale frames dropped)  (estimator, DTO, tracks) ├► body_<id> TF
    (rgbd only)                                                                 ├► ~/markers, ~/debug_image
                                                                                └► /humans/bodies/* (REP-155)

A managed lifecycle node (``rclpy.lifecycle``) that also works as a plain node: with ``autostart`` (default)
the constructor configures and activates it. configure = publishers + load the model (Pipeline);
activate = worker + subscriptions (reloading the model if deactivate freed it); deactivate = unsubscribe, stop
the worker and free the model (and its GPU memory); cleanup = destroy the publishers. ``~/enable``
(std_srvs/SetBool) pauses and resumes processing without a transition, and with ``input.lazy`` no frame is
processed while nobody subscribes to any output.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from mahmr_ros.msg import HumanMeshArray
from mahmr_ros.msg import MeshTopology as MeshTopologyMsg
from mahmr_ros.pipeline import InputError, Pipeline
from mahmr_ros.ros import convert
from mahmr_ros.ros.diagnostics import RateMeter, make_updater, node_diagnostics
from mahmr_ros.ros.hri import make_hri_publisher
from mahmr_ros.ros.image import bgr_to_image_msg, compressed_to_bgr, depth_to_metres, image_to_bgr
from mahmr_ros.ros.params import PARAMETERS, check_value, config_from_values, declare_parameters, read_config
from mahmr_ros.ros.sync import DepthCache, Pairing, create_pairing, stamp_ns
from mahmr_ros.ros.tf import make_transform_broadcaster
from mahmr_ros.ros.worker import LatestFrameWorker
from mahmr_ros.viz import render_overlay

MESHES_TOPIC = "/humans/meshes"
TOPOLOGY_TOPIC = "/humans/meshes/topology"
MARKERS_TOPIC = "~/markers"
DEBUG_IMAGE_TOPIC = "~/debug_image"
DIAGNOSTICS_TOPIC = "/diagnostics"
NO_PAIR_WARN_AFTER_S = 3.0  # images but no image/CameraInfo pair for this long -> warn (wrong topic?)


@dataclass
class Frame:
    """One input frame as received (messages are decoded on the worker thread)."""

    image_msg: object
    info_msg: object | None
    received_s: float  # time.perf_counter() at hand-off
    depth_msg: object | None = None


class MahmrNode(LifecycleNode):
    """The ``mahmr`` node (topics, frames and parameters: README.md, config/mahmr.yaml).

    Args:
        node_name: ROS node name.
        autostart: configure + activate in the constructor; None = the ``autostart`` parameter. A failed
            autostart raises RuntimeError saying why (e.g. which model file is missing).
        **kwargs: passed to ``rclpy.node.Node`` (namespace, parameter_overrides, context, ...).
    """

    def __init__(self, node_name: str = "mahmr", *, autostart: bool | None = None, **kwargs):
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        self.config = read_config(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline: Pipeline | None = None
        self.worker: LatestFrameWorker | None = None
        self.pairing: Pairing | None = None
        self.depth_cache: DepthCache | None = None
        self.enabled = True
        self.counts = {"received": 0, "published": 0, "skipped": 0, "failed": 0, "markers": 0, "idle": 0}
        self.last_processing_ms = 0.0
        self.last_latency_ms = 0.0
        self.last_timings_ms: dict[str, float] = {}
        self.last_people = 0
        self.start_error = ""
        self._input_rate = RateMeter()
        self._output_rate = RateMeter()
        self._warned_at: dict[str, float] = {}
        self._topologies_sent: set[str] = set()
        self._markers_sent_s = 0.0
        self._last_pair_s = 0.0
        self._publishers_ready = False
        self.enable_service = self.create_service(SetBool, "~/enable", self._on_enable)
        if self.config.autostart if autostart is None else autostart:
            self.trigger_configure()
            if self.start_error:
                raise RuntimeError(self.start_error)
            self.trigger_activate()
            if self.start_error:
                raise RuntimeError(self.start_error)

    # --- lifecycle transitions ----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Publishers, TF, status timer, then the model (a failure logs why and stays unconfigured)."""
        self.config = read_config(self)
        self._create_publishers()
        if not self._guarded("configure", self._load_pipeline):
            self._destroy_publishers()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Worker + subscriptions; reloads the model when deactivate freed it."""
        if not self._guarded("activate", self._start):
            self._stop()
            return TransitionCallbackReturn.FAILURE
        return super().on_activate(state)  # activates managed entities; keeps rclpy's bookkeeping

    def _start(self) -> bool:
        if self.pipeline is None and not self._load_pipeline():
            return False
        self._last_pair_s = time.monotonic()
        self._publish_topology()
        self.worker = LatestFrameWorker(self._process_frame, self._on_frame_error)
        self.pairing = self._subscribe()
        self.get_logger().info(
            f"[mahmr] active: estimator={type(self.pipeline.estimator).__name__} "
            f"body_model={self.pipeline.body_model} camera_info={self.config.input_use_camera_info} "
            f"dto={self.config.dto_mode}"
        )
        return True

    def _guarded(self, step: str, action) -> bool:
        """Run a transition step; rclpy swallows exceptions from transition callbacks, so log them here."""
        try:
            return bool(action())
        except Exception as exc:  # noqa: BLE001 - reported, and the transition fails cleanly
            self.start_error = f"[mahmr] {step} failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(self.start_error + "\n" + "".join(traceback.format_exception(exc)[-3:]))
            return False

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, stop the worker (the running frame finishes) and free the model."""
        self._stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self._destroy_publishers()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self._destroy_publishers()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self._stop()
        self._destroy_publishers()
        super().destroy_node()

    def _create_publishers(self) -> None:
        cfg = self.config
        reliable = QoSProfile(depth=cfg.publish_meshes_depth, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.meshes_pub = self.create_publisher(HumanMeshArray, MESHES_TOPIC, reliable)
        self.topology_pub = self.create_publisher(MeshTopologyMsg, TOPOLOGY_TOPIC, latched)
        self.markers_pub = self.create_publisher(MarkerArray, MARKERS_TOPIC, 1)
        self.debug_image_pub = self.create_publisher(Image, DEBUG_IMAGE_TOPIC, 1)
        self.updater = make_updater(self)  # diagnostic_updater when importable, else our own /diagnostics
        self.diagnostics_pub = None
        if self.updater is None:
            self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.tf_broadcaster, tf_kind = make_transform_broadcaster(self)
        if tf_kind == "none":
            self.get_logger().info(
                "[mahmr] neither tf2_ros nor tf2_msgs importable: no body_<id> TF published"
            )
        self.hri = make_hri_publisher(self) if cfg.publish_hri else None
        self.status_timer = self.create_timer(1.0, self._on_status_timer)
        self._publishers_ready = True

    def _destroy_publishers(self) -> None:
        if not self._publishers_ready:
            return
        self.destroy_timer(self.status_timer)
        publishers = [self.meshes_pub, self.topology_pub, self.markers_pub, self.debug_image_pub]
        publishers += [self.diagnostics_pub, getattr(self.tf_broadcaster, "publisher", None)]
        publishers += self.hri.publishers() if self.hri is not None else []
        for publisher in publishers:
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._topologies_sent.clear()
        self._publishers_ready = False

    def _load_pipeline(self) -> bool:
        pipeline_config = self.config.pipeline_config()
        try:
            self.pipeline = Pipeline.from_config(pipeline_config)
        except (ImportError, OSError, KeyError, ValueError, RuntimeError) as exc:
            name = pipeline_config["estimator"]
            self.start_error = (
                f"[mahmr] cannot load estimator '{name}': {type(exc).__name__}: {exc} "
                "(check the estimator, model.weights and model.smpl_path parameters; see config/mahmr.yaml)"
            )
            self.get_logger().error(self.start_error)
            return False
        self.start_error = ""
        return True

    def _stop(self) -> None:
        for subscription in self.pairing.subscriptions if self.pairing else []:
            self.destroy_subscription(subscription)
        self.pairing = None
        self.depth_cache = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    # --- callbacks (executor thread): hand over, nothing else -------------------------------------------

    def on_image(self, image_msg) -> None:
        self.on_image_pair(image_msg, None)

    def on_image_pair(self, image_msg, info_msg) -> None:
        self.counts["received"] += 1
        self._input_rate.tick()
        self._last_pair_s = time.monotonic()
        worker = self.worker
        if worker is None or not self.enabled:
            return
        if self.config.input_lazy and not self.has_consumers():
            self.counts["idle"] += 1
            return
        depth_msg = self.depth_cache.take(stamp_ns(image_msg)) if self.depth_cache is not None else None
        worker.submit(Frame(image_msg, info_msg, time.perf_counter(), depth_msg))

    def has_consumers(self) -> bool:
        """Does anybody listen to an output we would compute (meshes, markers, debug image, TF, REP-155)?"""
        publishers = [self.meshes_pub, self.markers_pub, self.debug_image_pub]
        publishers.append(
            getattr(self.tf_broadcaster, "publisher", getattr(self.tf_broadcaster, "pub_tf", None))
        )
        publishers += self.hri.publishers() if self.hri is not None else []
        return any(p is not None and p.get_subscription_count() > 0 for p in publishers)

    def _on_enable(self, request, response):
        self.enabled = bool(request.data)
        response.success = True
        response.message = f"[mahmr] processing {'enabled' if self.enabled else 'paused'}"
        self.get_logger().info(response.message)
        return response

    def _on_status_timer(self) -> None:
        self._check_pairing()
        if self.diagnostics_pub is not None:
            self.diagnostics_pub.publish(self._diagnostics())

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        values = {spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS}
        specs = {spec.name: spec for spec in PARAMETERS}
        for parameter in parameters:
            error = check_value(specs[parameter.name], parameter.value) if parameter.name in specs else None
            if error:
                return SetParametersResult(successful=False, reason=error)
            values[parameter.name] = parameter.value
        self.config = config_from_values(values)
        return SetParametersResult(successful=True)

    # --- worker thread -----------------------------------------------------------------------------------

    def _process_frame(self, frame: Frame) -> None:
        header = frame.image_msg.header
        decode = compressed_to_bgr if self.config.input_compressed else image_to_bgr
        image_bgr = decode(frame.image_msg)
        K = None if frame.info_msg is None else convert.camera_info_to_K(frame.info_msg, image_bgr.shape[:2])
        depth = None
        if frame.depth_msg is not None:
            depth = depth_to_metres(frame.depth_msg)
        elif self.config.dto_mode == "rgbd":
            self.warn_throttled("depth", "dto.mode rgbd but no depth image within input.depth_slop_s: "
                                "this frame uses the height prior only (check the depth remap)")  # fmt: skip
        result = self.pipeline.process(image_bgr, K, depth=depth, stamp=stamp_ns(frame.image_msg))
        self._publish(result, header, image_bgr, (time.perf_counter() - frame.received_s) * 1e3)

    def _on_frame_error(self, frame: Frame, error: BaseException) -> None:
        if isinstance(error, InputError):
            self.counts["skipped"] += 1
            self.warn_throttled(str(error).split("]")[0], f"skipped frame: {error}")
        else:
            self.counts["failed"] += 1
            self.warn_throttled(
                type(error).__name__,
                f"frame failed ({type(error).__name__}: {error}); skipped\n"
                + "".join(traceback.format_exception(error)[-3:]),
            )

    def _publish(self, result, header, image_bgr, processing_ms: float) -> None:
        cfg = self.config
        self._publish_topology()
        self.meshes_pub.publish(convert.frame_to_msg(result, header, cfg.publish_vertices, processing_ms))
        if cfg.publish_tf and self.tf_broadcaster is not None and result.humans:
            names = self.pipeline.topology().joint_names if cfg.publish_joint_frames else None
            transforms = convert.body_transforms(result, header, names)
            if transforms:
                self.tf_broadcaster.sendTransform(transforms)
        if self._markers_due():
            faces = self.pipeline.topology().faces
            self.markers_pub.publish(
                convert.markers_from_frame(result, header, faces, cfg.publish_markers_lifetime_s)
            )
            self.counts["markers"] += 1
        if cfg.publish_debug_image and self.debug_image_pub.get_subscription_count() > 0:
            overlay = render_overlay(image_bgr, result.humans, self.pipeline.topology().faces, result.K_used)
            self.debug_image_pub.publish(bgr_to_image_msg(overlay, header))
        if self.hri is not None:
            self.hri.publish(result, header, self.pipeline.topology().joint_names)
        self.counts["published"] += 1
        self._output_rate.tick()
        self.last_processing_ms = processing_ms
        self.last_timings_ms = dict(result.timings_ms)
        self.last_people = len(result.humans)
        stamp_s = header.stamp.sec + header.stamp.nanosec * 1e-9
        self.last_latency_ms = (self.get_clock().now().nanoseconds * 1e-9 - stamp_s) * 1e3

    # --- helpers -----------------------------------------------------------------------------------------

    def warn_throttled(self, key: str, message: str) -> None:
        """Log ``message`` at most once per ``publish.warn_period_s`` for each ``key``."""
        now = time.monotonic()
        if now - self._warned_at.get(key, -1e9) >= self.config.publish_warn_period_s:
            self._warned_at[key] = now
            self.get_logger().warning(f"[mahmr] {message}")

    def _subscribe(self) -> Pairing:
        cfg = self.config
        if cfg.input_image_qos == "reliable":
            qos = QoSProfile(depth=cfg.input_qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        else:
            qos = QoSProfile(**{**_qos_fields(qos_profile_sensor_data), "depth": cfg.input_qos_depth})
        image_type = CompressedImage if cfg.input_compressed else Image
        if not cfg.input_use_camera_info:
            pairing = Pairing([self.create_subscription(image_type, "image", self.on_image, qos)])
        else:
            pairing = create_pairing(self, image_type, "image", "camera_info", qos, cfg, self.on_image_pair)
        if cfg.dto_mode == "rgbd":
            self.depth_cache = DepthCache(cfg.input_depth_slop_s, size=2 * cfg.input_qos_depth)
            pairing.subscriptions.append(self.create_subscription(Image, "depth", self.depth_cache.add, qos))
        return pairing

    def _publish_topology(self) -> None:
        body_model = self.pipeline.body_model
        if body_model not in self._topologies_sent:
            self.topology_pub.publish(convert.topology_to_msg(self.pipeline.topology()))
            self._topologies_sent.add(body_model)

    def _markers_due(self) -> bool:
        cfg = self.config
        if not cfg.publish_markers or self.markers_pub.get_subscription_count() == 0:
            return False
        now = time.monotonic()
        rate_hz = cfg.publish_markers_max_rate_hz
        if rate_hz > 0 and now - self._markers_sent_s < 1.0 / rate_hz:
            return False
        self._markers_sent_s = now
        return True

    def _check_pairing(self) -> None:
        pairer = self.pairing.pairer if self.pairing else None
        if pairer is None or not pairer.waiting_images:
            return
        if time.monotonic() - self._last_pair_s > NO_PAIR_WARN_AFTER_S:
            self.warn_throttled(
                "pairing",
                "images arrive but no CameraInfo with a matching stamp: check the camera_info "
                "remap, raise input.sync_slop_s, set input.camera_info_cache true (latched camera_info) or "
                "input.use_camera_info false",
            )

    def _diagnostics(self) -> DiagnosticArray:
        out = DiagnosticArray(status=[node_diagnostics(self)])
        out.header.stamp = self.get_clock().now().to_msg()
        return out

    @property
    def dropped_frames(self) -> int:
        """Frames replaced by a newer one before the worker picked them up (latest-frame policy)."""
        return self.worker.dropped if self.worker else 0


def _qos_fields(profile: QoSProfile) -> dict:
    return {
        "history": profile.history,
        "reliability": profile.reliability,
        "durability": profile.durability,
        "depth": profile.depth,
    }


def main(args=None) -> int:
    """``ros2 run mahmr_ros mahmr_node``: init / try spin / finally destroy + try_shutdown (Jazzy, Humble)."""
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = MahmrNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 - report why the node could not start, exit non-zero
        rclpy.logging.get_logger("mahmr").fatal(f"[mahmr] cannot run: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
