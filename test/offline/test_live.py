"""``python -m mahmr_ros.cli live`` on a short video made from the bundled sample."""

from __future__ import annotations

import json

import cv2
import numpy as np

from mahmr_ros.cli import main


def test_live_writes_an_overlay_video_and_summary(tmp_path, sample, capsys):
    image, _, info = sample
    video = tmp_path / "in.avi"
    writer = cv2.VideoWriter(
        str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (image.shape[1], image.shape[0])
    )
    assert writer.isOpened()
    for _ in range(4):
        writer.write(image)
    writer.release()
    out = tmp_path / "overlay.avi"
    rc = main(
        [
            "live",
            "--video",
            str(video),
            "--out",
            str(out),
            "--max-frames",
            "3",
            "--rescan-every",
            "2",
        ]
    )
    assert rc == 0
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 3
    assert (
        np.abs(frames[0].astype(int) - image.astype(int)).mean() > 2
    )  # meshes drawn over the input
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["body_model"] == "anny" and len(summary["frames"]) == 3
    ids = [{p["id"] for p in f["people"]} for f in summary["frames"]]
    assert len(ids[0]) == info["num_people"] and ids[0] == ids[1] == ids[2]  # stable track ids
    assert "3 frames" in capsys.readouterr().out


def test_live_reports_a_missing_video(tmp_path, capsys):
    assert main(["live", "--video", str(tmp_path / "nope.mp4"), "--out", ""]) == 2
    assert "video file not found" in capsys.readouterr().err
