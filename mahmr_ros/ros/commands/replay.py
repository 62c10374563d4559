"""``python -m mahmr_ros.cli replay INPUT --out result.mcap``: the node's outputs for recorded
input, offline.

INPUT is a rosbag2 ``.mcap`` (images + CameraInfo), a video file or a folder of images. Every frame
goes through the same ``Pipeline`` the node runs (estimator -> DTO -> tracking) and the output
``.mcap`` gets what the node would publish, stamped with the input stamps:

    /humans/meshes            mahmr_ros/msg/HumanMeshArray
    /humans/meshes/topology   mahmr_ros/msg/MeshTopology (once)
    /tf                       tf2_msgs/msg/TFMessage (body_<id> frames)
    /mahmr/markers            visualization_msgs/msg/MarkerArray
    /camera/image/compressed  sensor_msgs/msg/CompressedImage (the input frame, JPEG;
                              --no-images drops it)

Open it in Foxglove, or ``ros2 bag play`` it into RViz.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HELP = "run the pipeline over a rosbag2 .mcap, a video or an image folder and write an .mcap"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
INFO_TYPE = "sensor_msgs/msg/CameraInfo"


@dataclass
class InputFrame:
    """One frame of the input: BGR pixels, K (or None), stamp (ns) and frame id."""

    image_bgr: np.ndarray
    K: np.ndarray | None
    stamp_ns: int
    frame_id: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="rosbag2 .mcap, video file, or folder of images")
    parser.add_argument(
        "--out", default=None, help="output .mcap (default: <input stem>_humans.mcap)"
    )
    parser.add_argument(
        "--config", default=None, help="pipeline config (YAML, e.g. config/mahmr.yaml)"
    )
    parser.add_argument("--estimator", default=None, help="override the config's estimator")
    parser.add_argument(
        "--image-topic", default=None, help="bag image topic (default: the first image topic)"
    )
    parser.add_argument(
        "--info-topic", default=None, help="bag CameraInfo topic (default: the first one)"
    )
    parser.add_argument(
        "--fps", type=float, default=10.0, help="stamps for image folders (and videos without fps)"
    )
    parser.add_argument("--hfov", type=float, default=None,
                        help="horizontal FoV (deg) for videos/folders; default: "
                            "estimated")  # fmt: skip
    parser.add_argument(
        "--frame-id", default="camera_optical_frame", help="frame id for videos/folders"
    )
    parser.add_argument(
        "--max-frames", type=int, default=0, help="stop after this many frames (0 = all)"
    )
    parser.add_argument(
        "--no-images", action="store_true", help="do not copy the input frames into the output"
    )


def run(args: argparse.Namespace) -> int:
    from mahmr_ros.pipeline import InputError, Pipeline, load_config

    source = Path(args.input)
    if not source.exists():
        print(f"[replay] input not found: {source}")
        return 2
    out = Path(args.out) if args.out else source.with_name(f"{source.stem}_humans.mcap")
    config = load_config(args.config)
    if args.estimator:
        config["estimator"] = args.estimator
    try:
        frames = read_frames(source, args)
        pipeline = Pipeline.from_config(config)
    except (OSError, ValueError, KeyError, ImportError) as err:
        print(f"[replay] {err}")
        return 2
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in requirements/core.txt

        def tqdm(it, **_):  # noqa: E306
            return it

    stats = replay(
        pipeline, tqdm(frames, desc="replay", unit="frame"), out, not args.no_images, InputError
    )
    pipeline.close()
    print(f"[replay] {stats['frames']} frames ({stats['skipped']} skipped), "
          f"{stats['people']} person-detections, {len(stats['ids'])} ids -> {out}")  # fmt: skip
    return 0 if stats["frames"] else 1


def replay(pipeline, frames, out: Path, with_images: bool = True, skip_errors=ValueError) -> dict:
    """Run ``pipeline`` on ``frames`` (InputFrame iterable) and write the node's outputs to
    ``out``.

    Returns:
        dict with ``frames`` (processed), ``skipped`` (bad frames, skipped like the node does),
        ``people`` (total person-detections) and ``ids`` (distinct track ids).
    """
    import cv2
    from builtin_interfaces.msg import Time
    from mcap_ros2.writer import Writer
    from std_msgs.msg import Header

    from mahmr_ros.ros import convert
    from mahmr_ros.ros.msgdef import full_definition

    out.parent.mkdir(parents=True, exist_ok=True)
    stats = {"frames": 0, "skipped": 0, "people": 0, "ids": set()}
    with open(out, "wb") as stream:
        writer = Writer(stream)
        schemas: dict[str, object] = {}

        def write(topic: str, type_name: str, message, stamp_ns: int) -> None:
            if type_name not in schemas:
                schemas[type_name] = writer.register_msgdef(type_name, full_definition(type_name))
            data = to_plain(message)
            writer.write_message(
                topic, schemas[type_name], data, log_time=stamp_ns, publish_time=stamp_ns
            )

        topology = pipeline.topology()
        write(
            "/humans/meshes/topology",
            "mahmr_ros/msg/MeshTopology",
            convert.topology_to_msg(topology),
            0,
        )
        for frame in frames:
            header = Header(
                frame_id=frame.frame_id,
                stamp=Time(sec=frame.stamp_ns // 10**9, nanosec=frame.stamp_ns % 10**9),
            )  # fmt: skip
            try:
                result = pipeline.process(frame.image_bgr, frame.K, stamp_ns=frame.stamp_ns)
            except skip_errors as err:
                stats["skipped"] += 1
                print(f"[replay] skipped frame at {frame.stamp_ns} ns: {err}")
                continue
            stats["frames"] += 1
            stats["people"] += len(result.humans)
            stats["ids"].update(h.track_id for h in result.humans)
            t = frame.stamp_ns
            write(
                "/humans/meshes",
                "mahmr_ros/msg/HumanMeshArray",
                convert.frame_to_msg(result, header),
                t,
            )
            write(
                "/tf",
                "tf2_msgs/msg/TFMessage",
                {"transforms": convert.body_transforms(result, header)},
                t,
            )
            markers = convert.markers_from_frame(result, header, topology.faces)
            write("/mahmr/markers", "visualization_msgs/msg/MarkerArray", markers, t)
            if with_images:
                ok, jpeg = cv2.imencode(".jpg", frame.image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
                image = {"header": header, "format": "jpeg", "data": jpeg.tobytes() if ok else b""}
                write("/camera/image/compressed", "sensor_msgs/msg/CompressedImage", image, t)
        writer.finish()
    return stats


def to_plain(value):
    """An rclpy message (or dict/list of them) as plain dicts, lists and scalars for the MCAP
    encoder."""
    if hasattr(value, "get_fields_and_field_types"):
        return {
            name: to_plain(getattr(value, name)) for name in value.get_fields_and_field_types()
        }
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, np.ndarray) or type(value).__name__ == "array":
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def read_frames(source: Path, args: argparse.Namespace) -> Iterator[InputFrame]:
    """Frames of a rosbag2 .mcap, a video or an image folder (validated up front: errors raise
    here)."""
    limit = args.max_frames or None
    if args.hfov is not None:
        _K_for((1, 1), args.hfov)  # a bad --hfov fails here, not in the middle of the output
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(
                f"[replay] no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}"
            )
        return _limit(_folder_frames(paths, args), limit)
    if source.suffix.lower() == ".mcap":
        return _limit(_bag_frames(source, args.image_topic, args.info_topic), limit)
    return _limit(_video_frames(source, args), limit)


def _limit(frames: Iterator[InputFrame], limit: int | None) -> Iterator[InputFrame]:
    for i, frame in enumerate(frames):
        if limit is not None and i >= limit:
            return
        yield frame


def _K_for(shape, hfov_deg: float | None) -> np.ndarray | None:
    if hfov_deg is None:
        return None
    from mahmr_ros.offline.place import assumed_K

    return assumed_K(shape[1], shape[0], hfov_deg)


def _folder_frames(paths: list[Path], args) -> Iterator[InputFrame]:
    import cv2

    for i, path in enumerate(paths):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            print(f"[replay] skipped unreadable image {path}")
            continue
        yield InputFrame(
            image, _K_for(image.shape, args.hfov), int(i * 1e9 / args.fps), args.frame_id
        )


def _video_frames(path: Path, args) -> Iterator[InputFrame]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(
            f"[replay] cannot open '{path}' as a video (or give a .mcap or an image folder)"
        )
    fps = capture.get(cv2.CAP_PROP_FPS) or args.fps

    def frames():
        i = 0
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield InputFrame(
                    image, _K_for(image.shape, args.hfov), int(i * 1e9 / fps), args.frame_id
                )
                i += 1
        finally:
            capture.release()

    return frames()


def _bag_frames(
    path: Path, image_topic: str | None, info_topic: str | None
) -> Iterator[InputFrame]:
    """Image (+ CameraInfo) messages of a rosbag2 .mcap; each image takes the latest CameraInfo
    before it."""
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    if summary is None:
        raise ValueError(f"[replay] {path} has no MCAP summary (is it a finished rosbag2 .mcap?)")
    topics = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
    image_topic = image_topic or next(
        (t for t, s in sorted(topics.items()) if s in IMAGE_TYPES), None
    )
    if image_topic not in topics or topics[image_topic] not in IMAGE_TYPES:
        found = ", ".join(f"{t} ({s})" for t, s in sorted(topics.items()))
        raise ValueError(f"[replay] no image topic '{image_topic}' in {path}; topics: {found}")
    info_topic = info_topic or next((t for t, s in sorted(topics.items()) if s == INFO_TYPE), None)
    return _bag_messages(
        path, image_topic, info_topic, topics[image_topic].endswith("CompressedImage")
    )


def _bag_messages(
    path: Path, image_topic: str, info_topic: str | None, compressed: bool
) -> Iterator[InputFrame]:
    from mcap_ros2.reader import read_ros2_messages

    from mahmr_ros.pipeline import InputError
    from mahmr_ros.ros.convert import camera_info_to_K
    from mahmr_ros.ros.image import compressed_to_bgr, image_to_bgr

    wanted = [image_topic] + ([info_topic] if info_topic else [])
    info = None
    for record in read_ros2_messages(str(path), topics=wanted):
        msg = record.ros_msg
        if record.channel.topic == info_topic:
            info = msg
            continue
        try:
            image = (
                compressed_to_bgr(msg) if compressed else image_to_bgr(msg, use_cv_bridge=False)
            )
            K = camera_info_to_K(info, image.shape[:2]) if info is not None else None
        except InputError as err:
            print(f"[replay] skipped a bad frame on {image_topic}: {err}")
            continue
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        yield InputFrame(image, K, stamp, msg.header.frame_id)
