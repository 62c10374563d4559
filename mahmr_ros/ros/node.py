"""MahmrNode: image (+ CameraInfo) in; HumanMeshArray, topology, TF, markers out. A thin shell over
Pipeline.

Data flow (callbacks only hand frames over; a worker thread does the slow work):

    image ──────┐ pair by stamp  one slot, latest frame
    camera_info ┼────────────► LatestFrameWorker ─► decode ─► Pipeline.process ─► /humans/meshes
    depth ──────┘ (sync.py)    (stale frames dropped)  (estimator, DTO, tracks) ├► body_<id> TF
    (rgbd only)                                                                 ├► ~/markers,
                                                                                   ~/debug_image
                                                                                └► /humans/bodies/*
                                                                                   (REP-155)

A managed lifecycle node (``rclpy.lifecycle``) that also works as a plain node: with ``autostart``
(default) the constructor configures and activates it. configure = publishers + load the model
(Pipeline); activate = worker + subscriptions (reloading the model if deactivate freed it);
deactivate = unsubscribe, stop the worker and free the model (and its GPU memory); cleanup =
destroy the publishers (TF, diagnostics included). A transition that is invalid in the current
state is refused, never fatal. ``~/enable`` (std_srvs/SetBool) pauses and resumes processing
without a transition, and with ``input.lazy`` no frame is processed while nobody subscribes to any
output.

A frame still running when the node is deactivated never publishes (``_generation``); the model is
freed when it ends. Parameters the node does not own (``use_sim_time``,
``diagnostic_updater.period``, ...) are left to rclpy and their owners.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import traceback
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from mahmr_ros.msg import HumanMeshArray
from mahmr_ros.msg import MeshTopology as MeshTopologyMsg
from mahmr_ros.pipeline import InputError, Pipeline
from mahmr_ros.ros import convert
from mahmr_ros.ros.dds import use_large_frame_profile
from mahmr_ros.ros.diagnostics import RateMeter, destroy_updater, make_updater, node_diagnostics
from mahmr_ros.ros.hri import make_hri_publisher
from mahmr_ros.ros.image import bgr_to_image_msg, compressed_to_bgr, depth_to_metres, image_to_bgr
from mahmr_ros.ros.inputs import NodeInputs
from mahmr_ros.ros.params import (
    PARAMETER_NAMES,
    config_from_values,
    declare_parameters,
    read_config,
)
from mahmr_ros.ros.sync import DepthJoiner, Pairing, stamp_ns
from mahmr_ros.ros.tf import make_transform_broadcaster, tf_publisher
from mahmr_ros.ros.worker import LatestFrameWorker
from mahmr_ros.viz import render_overlay

MESHES_TOPIC = "/humans/meshes"
TOPOLOGY_TOPIC = "/humans/meshes/topology"
MARKERS_TOPIC = "~/markers"
DEBUG_IMAGE_TOPIC = "~/debug_image"
DIAGNOSTICS_TOPIC = "/diagnostics"
NO_PAIR_WARN_AFTER_S = (
    3.0  # images but no image/CameraInfo pair for this long -> warn (wrong topic?)
)
WORKER_STOP_TIMEOUT_S = (
    5.0  # deactivate waits this long for a running frame (it never publishes after)
)
STAMP_REORDER_S = (
    1.0  # an image stamp up to this much older than the last one: a late frame, skipped;
)
# further back: the source restarted (bag loop, clock reset) and the tracks start over.


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
        autostart: configure + activate in the constructor; None = the ``autostart`` parameter. A
            failed autostart raises RuntimeError saying why (e.g. which model file is missing).
        **kwargs: passed to ``rclpy.node.Node`` (namespace, parameter_overrides, context, ...).
    """

    def __init__(self, node_name: str = "mahmr", *, autostart: bool | None = None, **kwargs):
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        self.config = read_config(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # rclpy (Humble, Jazzy) raises out of the executor for a transition the current state does
        # not have (ros2/rclpy#1209: `activate` while active ends the process); check those
        # requests first.
        self._change_state = self._service_change_state.callback
        self._service_change_state.callback = self._on_change_state
        self.pipeline: Pipeline | None = None
        self.worker: LatestFrameWorker | None = None
        self.inputs: NodeInputs | None = None
        self.updater = None
        self.enabled = True
        self.counts = {"received": 0, "published": 0, "skipped": 0, "failed": 0, "markers": 0,
                       "idle": 0, "out_of_order": 0}  # fmt: skip
        self.last_processing_ms = 0.0
        self.last_latency_ms = 0.0
        self.last_timings_ms: dict[str, float] = {}
        self.last_people = 0
        self.last_floor = None  # FloorEstimate of the last published frame (diagnostics)
        self.start_error = ""
        self._input_rate = RateMeter()
        self._output_rate = RateMeter()
        self._warned_at: dict[str, float] = {}
        self._topologies_sent: set[str] = set()
        self._markers_sent_s = 0.0
        self._last_pair_s = 0.0
        self._publishers_ready = False
        self._publish_lock = threading.Lock()
        self._generation = 0  # bumped by _stop: frames started before never publish
        self._last_stamp_ns: int | None = None
        self.enable_service = self.create_service(SetBool, "~/enable", self._on_enable)
        if self.config.autostart if autostart is None else autostart:
            self.trigger_configure()
            if self.start_error:
                raise RuntimeError(self.start_error)
            self.trigger_activate()
            if self.start_error:
                raise RuntimeError(self.start_error)

    # --- lifecycle transitions -------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Publishers, TF, status timer, then the model (a failure logs why and stays
        unconfigured)."""
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
        self._last_stamp_ns = None
        self._publish_topology(self.pipeline)
        process = functools.partial(
            self._process_frame, pipeline=self.pipeline, generation=self._generation
        )
        self.worker = LatestFrameWorker(process, self._on_frame_error)
        self.inputs = NodeInputs(self, self.config, self.on_image_pair, self._submit)
        self.get_logger().info(
            f"[mahmr] active: estimator={type(self.pipeline.estimator).__name__} "
            f"body_model={self.pipeline.body_model} image={self.inputs.image_topic} "
            f"camera_info={self.config.input_use_camera_info} intrinsics={self.inputs.intrinsics} "
            f"dto={self.config.dto_mode}"
        )
        return True

    def _guarded(self, step: str, action) -> bool:
        """Run a transition step; rclpy swallows exceptions from transition callbacks, so log them
        here."""
        try:
            return bool(action())
        except Exception as exc:  # noqa: BLE001 - reported, and the transition fails cleanly
            self.start_error = f"[mahmr] {step} failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(
                self.start_error + "\n" + "".join(traceback.format_exception(exc)[-3:])
            )
            return False

    def _on_change_state(self, request, response):
        """``~/change_state``: refuse a transition the current state does not offer, else run
        it."""
        transition = request.transition
        available = {t[0]: t[1] for t in self._state_machine.available_transitions}
        valid = (
            transition.label in available.values()
            if transition.label
            else transition.id in available
        )
        if not valid:
            state = self._state_machine.current_state[1]
            self.get_logger().warning(
                f"[mahmr] refused lifecycle transition '{transition.label or transition.id}' in "
                f"state '{state}' (available: "
                f"{', '.join(sorted(set(available.values()))) or 'none'})"
            )
            response.success = False
            return response
        return self._change_state(request, response)

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
        reliable = QoSProfile(
            depth=cfg.publish_meshes_depth, reliability=ReliabilityPolicy.RELIABLE
        )
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
        self.updater = make_updater(
            self
        )  # diagnostic_updater when importable, else our own /diagnostics
        self.diagnostics_pub = None
        if self.updater is None:
            self.diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.tf_broadcaster, tf_kind = make_transform_broadcaster(self)  # tf2_ros when importable
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
        for publisher in self._output_publishers() + [self.topology_pub, self.diagnostics_pub]:
            if publisher is not None:
                self.destroy_publisher(publisher)
        destroy_updater(self, self.updater)
        self.updater = None
        self._topologies_sent.clear()
        self._publishers_ready = False

    def _output_publishers(self) -> list:
        """Publishers of per-frame outputs: meshes, markers, debug image, /tf, REP-155 topics."""
        publishers = [
            self.meshes_pub,
            self.markers_pub,
            self.debug_image_pub,
            tf_publisher(self.tf_broadcaster),
        ]
        return publishers + (self.hri.publishers() if self.hri is not None else [])

    def _load_pipeline(self) -> bool:
        pipeline_config = self.config.pipeline_config()
        try:
            self.pipeline = Pipeline.from_config(pipeline_config)
        except (ImportError, OSError, KeyError, ValueError, RuntimeError) as exc:
            name = pipeline_config["estimator"]
            self.start_error = (
                f"[mahmr] cannot load estimator '{name}': {type(exc).__name__}: {exc} (check the "
                "estimator, model.weights and model.smpl_path parameters; see config/mahmr.yaml)"
            )
            self.get_logger().error(self.start_error)
            return False
        self.start_error = ""
        return True

    def _stop(self) -> None:
        """Unsubscribe; stop the worker (a running frame may finish but never publishes); free the
        model."""
        if self.inputs is not None:
            self.inputs.close()
            self.inputs = None
        with self._publish_lock:  # waits for a frame that is publishing right now
            self._generation += 1
        worker, pipeline = self.worker, self.pipeline
        self.worker = self.pipeline = None
        close = pipeline.close if pipeline is not None else None
        if worker is not None:
            if not worker.stop(WORKER_STOP_TIMEOUT_S, then=close):
                self.get_logger().warning(
                    f"[mahmr] a frame is still running after {WORKER_STOP_TIMEOUT_S:.0f} s; its "
                    "result is dropped and the model is freed when it ends"
                )
        elif close is not None:
            close()

    # --- callbacks (executor thread): hand over, nothing else ------------------------------------

    def on_image(self, image_msg) -> None:
        self.on_image_pair(image_msg, None)

    def on_image_pair(self, image_msg, info_msg) -> None:
        self.counts["received"] += 1
        self._input_rate.tick()
        self._last_pair_s = time.monotonic()
        if self.worker is None or self.inputs is None or not self.enabled:
            return
        if self.config.input_lazy and not self.has_consumers():
            self.counts["idle"] += 1
            return
        self.inputs.hand_over(image_msg, info_msg)  # (dto.mode rgbd: after the depth of its stamp)

    def _submit(self, pair, depth_msg) -> None:
        worker = self.worker
        if worker is not None:
            worker.submit(Frame(pair[0], pair[1], time.perf_counter(), depth_msg))

    def has_consumers(self) -> bool:
        """Does anybody listen to a per-frame output (meshes, markers, debug image, REP-155)?

        ``/tf`` listeners do not count: every robot runs one, so counting them would never idle.
        """
        publishers = [
            p for p in self._output_publishers() if p is not tf_publisher(self.tf_broadcaster)
        ]
        return any(p is not None and p.get_subscription_count() > 0 for p in publishers)

    def _on_enable(self, request, response):
        self.enabled = bool(request.data)
        response.success = True
        response.message = f"[mahmr] processing {'enabled' if self.enabled else 'paused'}"
        self.get_logger().info(response.message)
        return response

    def _on_status_timer(self) -> None:
        self._check_pairing()
        if self.inputs is not None:
            self.inputs.check_qos()
        if self.diagnostics_pub is not None:
            self.diagnostics_pub.publish(self._diagnostics())

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Check our parameters as a whole; leave the others (use_sim_time, qos_overrides, ...) to
        rclpy."""
        ours = {p.name: p.value for p in parameters if p.name in PARAMETER_NAMES}
        if not ours:
            return SetParametersResult(successful=True)
        values = {name: self.get_parameter(name).value for name in PARAMETER_NAMES}
        try:
            config = config_from_values({**values, **ours})
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        self.config = config
        return SetParametersResult(successful=True)

    # --- worker thread ---------------------------------------------------------------------------

    def _process_frame(self, frame: Frame, pipeline: Pipeline, generation: int) -> None:
        header = frame.image_msg.header
        stamp = stamp_ns(frame.image_msg)
        if not self._stamp_in_order(stamp, pipeline):
            return
        decode = compressed_to_bgr if self.config.input_compressed else image_to_bgr
        image_bgr = decode(frame.image_msg)
        K = None
        if frame.info_msg is not None:
            intrinsics = self.inputs.intrinsics if self.inputs is not None else "k"
            K = convert.camera_info_to_K(frame.info_msg, image_bgr.shape[:2], intrinsics)
            if intrinsics == "k" and convert.has_distortion(frame.info_msg):
                self.warn_throttled("distortion", "CameraInfo distortion "
                                    f"d={list(frame.info_msg.d)} "
                                    f"({frame.info_msg.distortion_model}) is not undone: on a raw "
                                    "image the results are approximate, off-centre most; feed "
                                    "image_rect (image_proc) and set input.intrinsics "
                                    "p")  # fmt: skip
        depth = None
        if frame.depth_msg is not None:
            depth = depth_to_metres(frame.depth_msg)
        elif self.config.dto_mode == "rgbd":
            self.warn_throttled("depth", "dto.mode rgbd but no depth image within "
                                "input.depth_slop_s of the image stamp after input.depth_wait_s: "
                                "this frame uses the height prior only (check the depth remap: "
                                f"{self.resolve_topic_name('depth')})")  # fmt: skip
        result = pipeline.process(image_bgr, K, depth=depth, stamp_ns=stamp)
        processing_ms = (time.perf_counter() - frame.received_s) * 1e3
        with self._publish_lock:
            if generation != self._generation:  # deactivated while this frame ran: drop it
                return
            self._publish(pipeline, result, header, image_bgr, processing_ms)

    def _stamp_in_order(self, stamp: int, pipeline: Pipeline) -> bool:
        """False for a late frame (older than the last one: skip it); a jump back resets the
        tracks."""
        last, self._last_stamp_ns = self._last_stamp_ns, stamp
        if last is None or stamp >= last:
            return True
        back_s = (last - stamp) * 1e-9
        if back_s <= STAMP_REORDER_S:
            self._last_stamp_ns = last
            self.counts["out_of_order"] += 1
            self.warn_throttled("out_of_order", f"skipped an image {back_s:.3f} s older than the "
                                "last one (arrived out of order)")  # fmt: skip
            return False
        if pipeline.tracker is not None:
            pipeline.tracker.reset()
        self.warn_throttled("stamp_jump", f"image stamps went back {back_s:.1f} s (bag loop, "
                            "clock reset?): track ids start over")  # fmt: skip
        return True

    def _on_frame_error(self, frame: Frame, error: BaseException) -> None:
        # One throttle key per kind of problem (numbers stripped), so a second kind is never
        # hidden.
        key = re.sub(r"\d+(\.\d+)?", "#", f"{type(error).__name__}: {error}")
        if isinstance(error, InputError):
            self.counts["skipped"] += 1
            self.warn_throttled(key, f"skipped frame: {error}")
        else:
            self.counts["failed"] += 1
            self.warn_throttled(
                key,
                f"frame failed ({type(error).__name__}: {error}); skipped\n"
                + "".join(traceback.format_exception(error)[-3:]),
            )

    def _publish(
        self, pipeline: Pipeline, result, header, image_bgr, processing_ms: float
    ) -> None:
        cfg = self.config
        self._publish_topology(pipeline)
        self.meshes_pub.publish(
            convert.frame_to_msg(result, header, cfg.publish_vertices, processing_ms)
        )
        if cfg.publish_tf and self.tf_broadcaster is not None:
            names = pipeline.topology().joint_names if cfg.publish_joint_frames else None
            transforms = convert.body_transforms(result, header, names)
            if result.floor is not None and cfg.publish_floor_frame:
                transforms.append(
                    convert.floor_transform(result.floor, header, cfg.publish_floor_frame)
                )
            if transforms:
                self.tf_broadcaster.sendTransform(transforms)
        if self._markers_due():
            faces = pipeline.topology().faces
            self.markers_pub.publish(
                convert.markers_from_frame(result, header, faces, cfg.publish_markers_lifetime_s)
            )
            self.counts["markers"] += 1
        if cfg.publish_debug_image and self.debug_image_pub.get_subscription_count() > 0:
            overlay = render_overlay(
                image_bgr, result.humans, pipeline.topology().faces, result.K_used
            )
            self.debug_image_pub.publish(bgr_to_image_msg(overlay, header))
        if self.hri is not None:
            self.hri.publish(result, header, pipeline.topology().joint_names)
        self.counts["published"] += 1
        self._output_rate.tick()
        self.last_processing_ms = processing_ms
        self.last_timings_ms = dict(result.timings_ms)
        self.last_people = len(result.humans)
        self.last_floor = result.floor
        stamp_s = header.stamp.sec + header.stamp.nanosec * 1e-9
        self.last_latency_ms = (self.get_clock().now().nanoseconds * 1e-9 - stamp_s) * 1e3

    # --- helpers ---------------------------------------------------------------------------------

    def warn_throttled(self, key: str, message: str) -> None:
        """Log ``message`` at most once per ``publish.warn_period_s`` for each ``key``."""
        now = time.monotonic()
        if now - self._warned_at.get(key, -1e9) >= self.config.publish_warn_period_s:
            self._warned_at[key] = now
            self.get_logger().warning(f"[mahmr] {message}")

    def _publish_topology(self, pipeline: Pipeline) -> None:
        body_model = pipeline.body_model
        if body_model not in self._topologies_sent:
            self.topology_pub.publish(convert.topology_to_msg(pipeline.topology()))
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
                "remap, raise input.sync_slop_s, set input.camera_info_cache true (latched "
                "camera_info) or input.use_camera_info false",
            )

    def _diagnostics(self) -> DiagnosticArray:
        out = DiagnosticArray(status=[node_diagnostics(self)])
        out.header.stamp = self.get_clock().now().to_msg()
        return out

    def image_subscription_status(self) -> str:
        """What the image input is doing (diagnostics): its topic and QoS, or why nothing
        arrives."""
        return (
            self.inputs.status() if self.inputs is not None else "not subscribed (node inactive)"
        )

    @property
    def pairing(self) -> Pairing | None:
        """Who pairs images with CameraInfos now (None while inactive or waiting for a
        publisher)."""
        return self.inputs.pairing if self.inputs is not None else None

    @property
    def depth_joiner(self) -> DepthJoiner | None:
        return self.inputs.depth_joiner if self.inputs is not None else None

    @property
    def dropped_frames(self) -> int:
        """Frames replaced by a newer one before the worker picked them up (latest-frame
        policy)."""
        return self.worker.dropped if self.worker else 0


def main(args=None) -> int:
    """``ros2 run mahmr_ros mahmr_node``: init / try spin / finally destroy + try_shutdown (Jazzy,
    Humble)."""
    # before rclpy.init: camera-sized messages between processes (see dds.py)
    use_large_frame_profile()
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
            counts = ", ".join(
                f"{k} {v}" for k, v in {**node.counts, "dropped": node.dropped_frames}.items()
            )
            rclpy.logging.get_logger("mahmr").info(
                f"[mahmr] frames: {counts}"
            )  # what a run did, at exit
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
