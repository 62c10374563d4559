"""End-to-end node latency: image publish -> ``/humans/meshes`` receive, with images at 30 Hz.

    tools/isolated.sh tools/env.sh python benchmarks/bench_node.py \
        --precision bf16  # full-size MA-HMR
    tools/isolated.sh tools/env.sh python benchmarks/bench_node.py \
        --config small --backend onnxruntime
    tools/isolated.sh tools/env.sh python benchmarks/bench_node.py \
        --estimator offline  # the offline default

Runs the real ``MahmrNode`` (in-process, real DDS inside the loopback namespace of
``tools/isolated.sh``) and a peer node that publishes ``bgr8`` images + CameraInfo at ``--rate`` Hz
and records when each ``HumanMeshArray`` arrives. Latency = arrival wall time - the image stamp
(wall clock at publish).

* ``--estimator mahmr`` (default): MA-HMR (``--config``, default the full-size ``fov_kid``) on
  SEEDED weights and a SYNTHETIC SMPL file (no licensed files here), 1280x720 frames. As in
  ``bench_network.py`` the scale map is replaced by a synthetic one with ``--people`` people, so
  the network processes a realistic token count, and the decoder's confidences are forced so that
  exactly that many people are decoded and published. DTO is off (network + SMPL + messages).
* ``--estimator offline``: the package default (Anny + BlazePose, DTO-Lite prior) on the bundled
  640x480 sample with its 3 people and its camera K.

The node keeps only the latest frame, so at 30 Hz input a slower pipeline drops frames: the output
rate is reported next to the latency. The JSON records the machine (CPU, flags, threads, versions)
and the load average before and after. ROS imports are allowed here (a ROS benchmark, like
``mahmr_ros/ros``): hence the ``noqa: TID251``. Output:
``benchmarks/results/bench-node-<what>-<threads>t.{json,md}`` (``<what>`` = ``offline`` or
``<config>-<backend>-<precision>``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netbench  # noqa: E402  (the folder of this script)

ForcedPeople = netbench.ForcedPeople


def make_estimator_factory(args, workdir: Path):
    """A pipeline estimator factory: MA-HMR on random weights + synthetic SMPL + forced scale
    map."""
    from mahmr_ros.body.synthetic import make_synthetic_smpl
    from mahmr_ros.model import build_model
    from mahmr_ros.model.estimator import MahmrEstimator
    from mahmr_ros.model.preprocess import preprocess

    torch.manual_seed(0)
    config = netbench.CONFIGS[args.config]
    model = build_model(config)
    weights = workdir / "random_weights.pth"
    torch.save(model.state_dict(), weights)
    smpl = make_synthetic_smpl(workdir / "synthetic_smpl.npz")
    _, meta = preprocess(np.zeros((*netbench.FRAME_HW, 3), np.uint8), model.cfg.input_size)
    smap = netbench.scene_scale_map(str(args.people), meta.padded_hw, model.cfg.input_size)
    del model

    def factory(**_ignored):
        estimator = MahmrEstimator(
            config=config,
            weights=weights,
            smpl_path=smpl,
            conf_thresh=args.conf,
            device=args.device,
            backend=args.backend,
            precision=args.precision,
        )
        network = getattr(estimator.backend, "network", None)
        if network is None:
            raise SystemExit(
                f"backend {args.backend} has no staged network to force the scale map on"
            )
        network.runner = ForcedPeople(network.runner, smap, args.people)
        return estimator

    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="mahmr", choices=("mahmr", "offline"))
    parser.add_argument("--config", default="fov_kid", choices=sorted(netbench.CONFIGS))
    parser.add_argument("--backend", default="torch", help="torch, onnxruntime, tensorrt or auto")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--conf", type=float, default=0.3, help="detection threshold")
    parser.add_argument("--rate", type=float, default=30.0, help="image rate, Hz")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = netbench.load_average()

    import rclpy  # noqa: TID251
    from mahmr_ros.msg import HumanMeshArray
    from rclpy.executors import SingleThreadedExecutor  # noqa: TID251
    from rclpy.parameter import Parameter  # noqa: TID251
    from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: TID251
    from sensor_msgs.msg import CameraInfo, Image  # noqa: TID251

    from mahmr_ros.pipeline import register_estimator
    from mahmr_ros.ros.node import MESHES_TOPIC, MahmrNode

    workdir = tempfile.TemporaryDirectory(prefix="bench_node_")
    if args.estimator == "mahmr":
        register_estimator("bench_mahmr", make_estimator_factory(args, Path(workdir.name)))
        overrides = [
            Parameter("estimator", value="bench_mahmr"),
            Parameter("dto.mode", value="off"),
        ]
        H, W = netbench.FRAME_HW
        frame = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
        K = [1000.0, 0.0, W / 2, 0.0, 1000.0, H / 2, 0.0, 0.0, 1.0]
    else:
        from mahmr_ros.offline.sample import load_sample

        overrides = [Parameter("estimator", value="offline")]
        frame, K_sample, info = load_sample()
        H, W = frame.shape[:2]
        K = [float(x) for x in np.asarray(K_sample).ravel()]
        args.people = info["num_people"]
    frame_bytes = frame.tobytes()
    rclpy.init()
    arrivals: list[tuple[float, float, int]] = []  # (stamp s, arrival s, people)
    published = [0]
    measuring = threading.Event()
    node = peer = executor = None
    try:
        node = MahmrNode(parameter_overrides=overrides, autostart=True)
        peer = rclpy.create_node("bench_peer")
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = peer.create_publisher(Image, "image", reliable)
        info_pub = peer.create_publisher(CameraInfo, "camera_info", reliable)

        def on_meshes(msg):
            if measuring.is_set():
                stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                arrivals.append((stamp, time.time(), len(msg.humans)))

        peer.create_subscription(HumanMeshArray, MESHES_TOPIC, on_meshes, reliable)

        def publish():
            now = time.time()
            image = Image(height=H, width=W, encoding="bgr8", step=3 * W, data=frame_bytes)
            image.header.frame_id = "camera"
            image.header.stamp.sec, image.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
            info = CameraInfo(height=H, width=W, header=image.header)
            info.k = K
            info_pub.publish(info)
            image_pub.publish(image)
            if measuring.is_set():
                published[0] += 1

        peer.create_timer(1.0 / args.rate, publish)
        # one single-threaded executor, as `ros2 run` spins the node (rclpy.spin); the node's
        # callbacks only hand frames to its worker thread. rclpy's MultiThreadedExecutor busy-waits
        # in spin_once while a callback group is busy: it took a whole core of this 2-core machine
        # (py-spy: the main thread at 94 % in wait_for_ready_callbacks / Future.done) and starved
        # the publisher and the node
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.add_node(peer)
        end_warmup = time.time() + args.warmup
        while time.time() < end_warmup:
            executor.spin_once(timeout_sec=0.05)
        measuring.set()
        start = time.time()
        while time.time() < start + args.seconds:
            executor.spin_once(timeout_sec=0.05)
        measuring.clear()
        elapsed = time.time() - start
    finally:
        if executor is not None:
            executor.shutdown()
        for ros_node in (node, peer):
            if ros_node is not None:
                ros_node.destroy_node()  # stops the node's worker thread before the context goes
        rclpy.try_shutdown()
    if not arrivals:
        print(
            "no /humans/meshes received: is the node running (see its log above)?", file=sys.stderr
        )
        return 1
    latency = np.array([(arrival - stamp) * 1e3 for stamp, arrival, _ in arrivals])
    machine = netbench.machine_info(torch.device(args.device))
    report = {
        "machine": machine,
        "device": netbench.device_label(machine),
        "estimator": args.estimator,
        "frame": f"{W}x{H}",
        "people_forced" if args.estimator == "mahmr" else "people_in_sample": args.people,
        "people_published_mean": float(np.mean([p for _, _, p in arrivals])),
        "input_rate_hz": args.rate,
        "images_published": published[0],
        "meshes_received": len(arrivals),
        "output_rate_hz": len(arrivals) / elapsed,
        "latency_p50_ms": float(np.percentile(latency, 50)),
        "latency_p90_ms": float(np.percentile(latency, 90)),
        "seconds": elapsed,
        "load_average_before": load_before,
        "load_average_after": netbench.load_average(),
    }
    name = "offline"
    if args.estimator == "mahmr":
        report.update(
            config=args.config, backend=args.backend, precision=args.precision, weights="seeded"
        )
        name = f"{args.config}-{args.backend}-{args.precision}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-node-{name}-{machine['torch_threads']}t"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    what = (
        f"MA-HMR `{args.config}` (seeded weights, synthetic SMPL), {args.backend} "
        f"{args.precision}, {args.people} forced people, DTO off"
        if args.estimator == "mahmr"
        else f"offline estimator (default), bundled sample with {args.people} people"
    )
    table = (
        f"Device: {report['device']}; torch {machine['torch']}; {what}; images {W}x{H} at "
        f"{args.rate:g} Hz for {elapsed:.0f} s; load average before {load_before}, after "
        f"{report['load_average_after']}.\n\n| latency p50 ms | latency p90 ms | output Hz | "
        "images | meshes | people per message |\n|---:|---:|---:|---:|---:|---:|\n| "
        f"{report['latency_p50_ms']:.0f} | {report['latency_p90_ms']:.0f} | "
        f"{report['output_rate_hz']:.2f} | {published[0]} | {len(arrivals)} | "
        f"{report['people_published_mean']:.1f} |\n"
    )
    (out / f"{stem}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
