"""End-to-end node latency: image publish -> ``/humans/meshes`` receive, with images at 30 Hz.

    tools/isolated.sh tools/env.sh python benchmarks/bench_node.py                  # small config, CPU
    tools/isolated.sh tools/env.sh python benchmarks/bench_node.py --backend torch --precision bf16

Runs the real ``MahmrNode`` (in-process, real DDS inside the loopback namespace of ``tools/isolated.sh``)
with the MA-HMR estimator on random weights and a SYNTHETIC SMPL file (no licensed files here), and a peer
node that publishes 1280x720 ``bgr8`` images + CameraInfo at ``--rate`` Hz and records when each
``HumanMeshArray`` arrives. Latency = arrival wall time - the image stamp (wall clock at publish). As in
``bench_network.py`` the scale map is replaced by a synthetic one with ``--people`` people, so the network
processes a realistic token count, and the decoder's confidences are forced so that exactly that many
people are decoded and published. The node keeps only the latest frame, so at 30 Hz input a slower pipeline
drops frames: the output rate is reported next to the latency. DTO is off (network + SMPL + messages).
ROS imports are allowed here (a ROS benchmark, like ``mahmr_ros/ros``): hence the ``noqa: TID251``.
Output: ``benchmarks/results/bench-node-<config>-<backend>-<precision>.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

_SPEC = importlib.util.spec_from_file_location("bench_network", Path(__file__).with_name("bench_network.py"))
bench_network = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_network)


class ForcedPeople(bench_network.ForcedScaleMap):
    """Also forces the decoder's confidences: the first ``people`` queries 0.9, the others 0.05, so that the
    postprocessing, SMPL and the messages carry exactly ``people`` people (random weights would keep ~all)."""

    def __init__(self, runner, scale_map: torch.Tensor, people: int):
        super().__init__(runner, scale_map)
        self.people = people

    def run(self, stage, *inputs):
        out = super().run(stage, *inputs)
        if stage == "decoder":
            index = self.decoder_outputs.index("pred_confs")
            confs = torch.full_like(out[index], 0.05)
            confs[:, : self.people] = 0.9
            out = out[:index] + (confs,) + out[index + 1 :]
        return out


def make_estimator_factory(args, workdir: Path):
    """A pipeline estimator factory: MA-HMR on random weights + synthetic SMPL + forced scale map."""
    from mahmr_ros.body.synthetic import make_synthetic_smpl
    from mahmr_ros.model import build_model
    from mahmr_ros.model.estimator import MahmrEstimator
    from mahmr_ros.model.preprocess import preprocess

    torch.manual_seed(0)
    config = bench_network.CONFIGS[args.config]
    model = build_model(config)
    weights = workdir / "random_weights.pth"
    torch.save(model.state_dict(), weights)
    smpl = make_synthetic_smpl(workdir / "synthetic_smpl.npz")
    _, meta = preprocess(np.zeros((*bench_network.FRAME_HW, 3), np.uint8), model.cfg.input_size)
    scale = model.cfg.input_size / bench_network.FRAME_HW[1]
    smap = bench_network.synthetic_scale_map(args.people, meta.padded_hw, scale, seed=args.people)

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
            raise SystemExit(f"backend {args.backend} has no staged network to force the scale map on")
        network.runner = ForcedPeople(network.runner, smap, args.people)
        return estimator

    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small", choices=sorted(bench_network.CONFIGS))
    parser.add_argument("--backend", default="torch", help="torch, onnxruntime, tensorrt or auto")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--conf", type=float, default=0.3, help="detection threshold")
    parser.add_argument("--rate", type=float, default=30.0, help="image rate, Hz")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)

    import rclpy  # noqa: TID251
    from mahmr_ros.msg import HumanMeshArray
    from rclpy.executors import MultiThreadedExecutor  # noqa: TID251
    from rclpy.parameter import Parameter  # noqa: TID251
    from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: TID251
    from sensor_msgs.msg import CameraInfo, Image  # noqa: TID251

    from mahmr_ros.pipeline import register_estimator
    from mahmr_ros.ros.node import MESHES_TOPIC, MahmrNode

    workdir = tempfile.TemporaryDirectory(prefix="bench_node_")
    register_estimator("bench_mahmr", make_estimator_factory(args, Path(workdir.name)))
    rclpy.init()
    H, W = bench_network.FRAME_HW
    frame = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8).tobytes()
    arrivals: list[tuple[float, float, int]] = []  # (stamp s, arrival s, people)
    published = [0]
    measuring = threading.Event()
    node = peer = executor = None
    try:
        node = MahmrNode(
            parameter_overrides=[
                Parameter("estimator", value="bench_mahmr"),
                Parameter("dto.mode", value="off"),
            ],
            autostart=True,
        )
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
            image = Image(height=H, width=W, encoding="bgr8", step=3 * W, data=frame)
            image.header.frame_id = "camera"
            image.header.stamp.sec, image.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
            info = CameraInfo(height=H, width=W, header=image.header)
            info.k = [1000.0, 0.0, W / 2, 0.0, 1000.0, H / 2, 0.0, 0.0, 1.0]
            info_pub.publish(info)
            image_pub.publish(image)
            if measuring.is_set():
                published[0] += 1

        peer.create_timer(1.0 / args.rate, publish)
        executor = MultiThreadedExecutor(num_threads=3)
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
        print("no /humans/meshes received: is the node running (see its log above)?", file=sys.stderr)
        return 1
    latency = np.array([(arrival - stamp) * 1e3 for stamp, arrival, _ in arrivals])
    report = {
        "device": bench_network.device_name(torch.device(args.device)),
        "torch": torch.__version__,
        "config": args.config,
        "backend": args.backend,
        "precision": args.precision,
        "people_forced": args.people,
        "people_published_mean": float(np.mean([p for _, _, p in arrivals])),
        "input_rate_hz": args.rate,
        "images_published": published[0],
        "meshes_received": len(arrivals),
        "output_rate_hz": len(arrivals) / elapsed,
        "latency_p50_ms": float(np.percentile(latency, 50)),
        "latency_p90_ms": float(np.percentile(latency, 90)),
        "seconds": elapsed,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-node-{args.config}-{args.backend}-{args.precision}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    table = (
        f"Device: {report['device']}; torch {report['torch']}; config `{args.config}`, backend "
        f"{args.backend} {args.precision}; {args.people} synthetic people; images 1280x720 at "
        f"{args.rate:g} Hz for {elapsed:.0f} s.\n\n"
        "| latency p50 ms | latency p90 ms | output Hz | images | meshes |\n"
        f"|---:|---:|---:|---:|---:|\n| {report['latency_p50_ms']:.0f} | {report['latency_p90_ms']:.0f} | "
        f"{report['output_rate_hz']:.2f} | {published[0]} | {len(arrivals)} |\n"
    )
    (out / f"{stem}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
