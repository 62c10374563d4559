"""``make demo``: the node graph end to end on one frame, in one process, over real DDS.

    FramePlayer ──image, camera_info──► MahmrNode ──/humans/meshes (+ /topology)──► DemoReceiver
    (real scene, sample or --image)      (estimator -> DTO -> tracking)      (prints, writes files)

The frame: a real street scene when setup could fetch it (``vtest.avi`` frame 720 from OpenCV's
samples, Apache-2.0, 8 people; :mod:`mahmr_ros.offline.street_sample`; K for a 60 degree FoV,
camera height unknown), else the bundled synthetic sample (3 rendered people, K and camera height
known); ``--synthetic`` forces the sample, ``--image`` takes your own.

The receiver rebuilds the people from the messages alone (``convert.msg_to_humans``), so what it
prints and draws is exactly what any subscriber gets. Outputs: ``<out>/overlay.png`` (meshes over
the image) and ``<out>/scene.glb`` (open in Blender, MeshLab or a glTF viewer).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

COLUMNS = ("id", "height m", "child", "distance m", "x m", "y m", "z m", "conf")
WIDTHS = (8, 8, 5, 10, 6, 6, 6, 5)
HELP = (
    "run the node graph on a real street scene or the bundled sample (player -> node -> receiver)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image",
        default=None,
        help="an image file instead of the bundled sample (K from a "
        "60 degree horizontal FoV unless --no-camera-info)",
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="show the bundled synthetic sample (3 rendered people, known camera) even if the "
        "real scene is cached",
    )
    parser.add_argument(
        "--estimator",
        default="auto",
        help="estimator name (default: auto = MA-HMR when "
        "--weights and --smpl are given, else the offline default)",
    )
    parser.add_argument("--weights", default="", help="MA-HMR checkpoint (.bin/.pth)")
    parser.add_argument("--smpl", default="", help="SMPL neutral model (.npz/.pkl)")
    parser.add_argument(
        "--dto-mode",
        default="prior_only",
        choices=("off", "prior_only"),
        help="DTO refinement in the node (default: prior_only)",
    )
    parser.add_argument(
        "--frames", type=int, default=3, help="frames to play (ids stay stable across them)"
    )
    parser.add_argument(
        "--no-camera-info",
        action="store_true",
        help="publish no CameraInfo: the estimator chooses the camera (k_estimated)",
    )
    parser.add_argument(
        "--camera-height",
        type=float,
        default=None,
        help="camera height above the floor (m) for the offline estimator's floor sizing "
        "(recognises children); default: the bundled sample's 1.2 m, or unknown (0) with --image",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for each result"
    )
    parser.add_argument("--out", default="out/demo", help="folder for overlay.png and scene.glb")


def run(args: argparse.Namespace) -> int:
    try:
        import rclpy  # noqa: F401

        from mahmr_ros.msg import HumanMeshArray  # noqa: F401
    except ImportError as err:
        print(f"[demo] needs rclpy and the built messages ({err}); run it with `make demo`")
        return 2
    try:
        image, K, synthetic = demo_frame(args.image, args.synthetic)
    except (FileNotFoundError, OSError, ImportError) as err:
        print(f"[demo] no input frame: {err}")
        return 2
    camera_height = args.camera_height
    if camera_height is None and synthetic:
        from mahmr_ros.offline.sample import CAMERA_HEIGHT_M  # the bundled sample's level camera

        camera_height = CAMERA_HEIGHT_M
    camera_height = camera_height or 0.0
    params = {"estimator": args.estimator, "dto.mode": args.dto_mode,
              "model.weights": args.weights, "model.smpl_path": args.smpl,
              "input.use_camera_info": not args.no_camera_info,
              "offline.camera_height_m": float(camera_height)}  # fmt: skip
    try:
        report = run_graph(
            image, None if args.no_camera_info else K, params, args.frames, args.timeout
        )
    except RuntimeError as err:
        print(f"[demo] {err}")
        return 2
    print(format_report(report))
    written = write_outputs(report, image, Path(args.out))
    for path in written:
        print(f"[demo] wrote {path}")
    return 0 if report["frames"] else 1


def demo_frame(image_path: str | None, synthetic: bool) -> tuple[np.ndarray, np.ndarray, bool]:
    """The demo's frame, its K and whether it is the synthetic sample; prints where the frame comes
    from.

    ``image_path`` wins; else the real scene cached at setup (unless ``synthetic``); else the
    sample.
    """
    from mahmr_ros.ros.player import load_frame

    if image_path is not None:
        image, K = load_frame(image_path)
        print(f"[demo] scene: {image_path} (K for a 60 degree horizontal FoV)")
        return image, K, False
    if not synthetic:
        from mahmr_ros.offline.place import assumed_K
        from mahmr_ros.offline.street_sample import VTEST_SOURCE, load_demo_frame

        image = load_demo_frame()
        if image is not None:
            print(
                f"[demo] scene: {VTEST_SOURCE}; K for a 60 degree horizontal FoV, camera height "
                "unknown"
            )
            return image, assumed_K(image.shape[1], image.shape[0], 60.0), False
        print(
            "[demo] the real scene was not fetched at setup (see its log): showing the synthetic "
            "sample"
        )
    image, K = load_frame(None)
    print(
        "[demo] scene: the bundled synthetic sample (3 rendered Anny people, camera 1.2 m above "
        "the floor)"
    )
    return image, K, True


def run_graph(image, K, params: dict, frames: int, timeout_s: float) -> dict:
    """Play ``frames`` copies of ``image`` through a MahmrNode; returns what the receiver got.

    Returns:
        dict with ``frames`` (list of (HumanMeshArray, latency_ms)), ``topology`` (MeshTopology msg
        or None), ``estimator`` (class name), ``load_s`` (model load time).

    Raises:
        RuntimeError: the node could not start (e.g. missing model files) or no result arrived in
            time.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from mahmr_ros.msg import HumanMeshArray, MeshTopology
    from mahmr_ros.ros.node import MahmrNode
    from mahmr_ros.ros.player import FramePlayer
    from mahmr_ros.ros.sync import stamp_ns

    context = rclpy.context.Context()
    rclpy.init(context=context)
    nodes = []
    try:
        t0 = time.perf_counter()
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        node = MahmrNode(context=context, parameter_overrides=overrides)
        nodes.append(node)
        load_s = time.perf_counter() - t0
        player = FramePlayer(image, K, rate_hz=0.0, context=context)
        receiver = rclpy.create_node("demo_receiver", context=context)
        nodes += [player, receiver]
        meshes, topology = [], []
        receiver.create_subscription(
            HumanMeshArray,
            "/humans/meshes",
            meshes.append,
            QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
        )
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)  # fmt: skip
        receiver.create_subscription(
            MeshTopology, "/humans/meshes/topology", topology.append, latched
        )
        executor = SingleThreadedExecutor(context=context)
        for n in nodes:
            executor.add_node(n)

        def spin_until(predicate, what: str) -> None:
            end = time.monotonic() + timeout_s
            while not predicate():
                if time.monotonic() > end:
                    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
                executor.spin_once(timeout_sec=0.02)

        spin_until(
            lambda: (
                player.image_pub.get_subscription_count() > 0
                and node.meshes_pub.get_subscription_count() > 0
            ),
            "the node and receiver to connect",
        )
        results = []
        for _ in range(frames):
            sent_s = time.perf_counter()
            header = player.publish_once()
            want = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
            spin_until(lambda: any(stamp_ns(m) == want for m in meshes), "/humans/meshes")
            msg = next(m for m in meshes if stamp_ns(m) == want)
            results.append((msg, (time.perf_counter() - sent_s) * 1e3))
        spin_until(lambda: topology, "/humans/meshes/topology")
        return {
            "frames": results,
            "topology": topology[-1],
            "estimator": type(node.pipeline.estimator).__name__,
            "load_s": load_s,
            "dropped": node.dropped_frames,
        }
    finally:
        for n in reversed(nodes):
            n.destroy_node()
        rclpy.try_shutdown(context=context)


def format_report(report: dict) -> str:
    """The per-person table of the last frame plus per-frame latency."""
    msg, _ = report["frames"][-1]
    lines = [
        f"[demo] estimator {report['estimator']} (body model '{msg.body_model}', "
        f"loaded in {report['load_s']:.1f} s)",
        f"[demo] K {'estimated by the estimator' if msg.k_estimated else 'from CameraInfo'}: "
        f"fx={msg.k[0]:.1f} fy={msg.k[4]:.1f} cx={msg.k[2]:.1f} cy={msg.k[5]:.1f}",
        "[demo] frame latency (publish -> /humans/meshes received): "
        + ", ".join(f"{ms:.0f} ms" for _, ms in report["frames"]),
        f"[demo] {len(msg.humans)} people on /humans/meshes (stamp {msg.header.stamp.sec}."
        f"{msg.header.stamp.nanosec:09d}, frame '{msg.header.frame_id}'):",
        "  " + " ".join(f"{c:>{w}}" for c, w in zip(COLUMNS, WIDTHS)),
    ]
    for mesh in msg.humans:
        p = mesh.pelvis.position
        distance = float(np.linalg.norm([p.x, p.y, p.z]))
        cells = (mesh.id, f"{mesh.height_m:.2f}", "yes" if mesh.is_child else "no",
                 f"{distance:.2f}", f"{p.x:.2f}", f"{p.y:.2f}", f"{p.z:.2f}",
                 f"{mesh.confidence:.2f}")  # fmt: skip
        lines.append("  " + " ".join(f"{c:>{w}}" for c, w in zip(cells, WIDTHS)))
    return "\n".join(lines)


def write_outputs(report: dict, image: np.ndarray, out: Path) -> list[Path]:
    """overlay.png and scene.glb from the last received frame (nothing when nobody was found)."""
    import cv2

    from mahmr_ros.ros.convert import msg_to_humans, msg_to_topology
    from mahmr_ros.viz import render_overlay, save_scene

    msg, _ = report["frames"][-1]
    humans = msg_to_humans(msg)
    faces = msg_to_topology(report["topology"]).faces
    out.mkdir(parents=True, exist_ok=True)
    overlay = out / "overlay.png"
    K = np.asarray(msg.k, np.float64).reshape(3, 3)
    cv2.imwrite(str(overlay), render_overlay(image, humans, faces, K))
    written = [overlay]
    if humans:
        written.append(save_scene(out / "scene.glb", humans, faces))
    return written
