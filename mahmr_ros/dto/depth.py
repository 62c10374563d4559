"""Depth sources for DTO: registered metric depth images and relative depth from a user-supplied
ONNX model.

* Metric (RGB-D): ``16UC1`` images are millimetres, ``32FC1`` metres (REP-117: 0, NaN and +-inf are
  invalid). ``metric_depth_m`` converts either to float32 metres with NaN for invalid pixels (0,
  NaN, inf, saturated or out-of-range values). Flying pixels at silhouettes and IR shadows next to
  people are handled where the cue is gathered: invalid pixels are skipped, person regions are
  eroded (``erode_px``) and the IQR filter of ``mahmr_ros.dto.cues`` rejects what remains.
* Relative (monocular): a Depth-Anything-style network exported to ONNX by the user (no weights
  ship with this package). ``RelativeDepthModel`` runs it with onnxruntime and returns its
  disparity at the image's size; ``disparity_to_cue`` gives DTO's cue d = 1 / disparity (spec dto
  §2.4: zeros become the smallest positive disparity so that sky / far background does not produce
  inf).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def metric_depth_m(depth, encoding: str | None = None, max_range_m: float = 20.0) -> np.ndarray:
    """A registered depth image as float32 metres, NaN where invalid.

    Args:
        depth: (H, W) array. ``uint16`` (or ``encoding="16UC1"``) = millimetres; float
            (``"32FC1"``) = metres.
        encoding: ROS encoding name, or None to infer from the dtype.
        max_range_m: readings beyond this are treated as invalid (saturation, multipath), metres.

    Returns:
        (H, W) float32 metres, NaN for invalid pixels.

    Raises:
        ValueError: wrong rank, unknown encoding, or a dtype that contradicts the encoding.
    """
    arr, unit = check_metric_image(depth, encoding)
    return metric_values_m(arr, unit, max_range_m)


def check_metric_image(depth, encoding: str | None = None) -> tuple[np.ndarray, float]:
    """Validate a depth image; returns the raw (H, W) array (no copy) and its unit in metres (1e-3
    or 1).

    Raises:
        ValueError: wrong rank, unknown encoding, or a dtype that contradicts the encoding.
    """
    arr = np.asarray(depth)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"[dto.depth] depth image must be (H, W), got shape {arr.shape}")
    if encoding is None:
        encoding = "16UC1" if arr.dtype == np.uint16 else "32FC1"
    enc = encoding.upper()
    if enc in ("16UC1", "MONO16"):
        if arr.dtype != np.uint16:
            raise ValueError(
                f"[dto.depth] 16UC1 depth must be uint16 millimetres, got dtype {arr.dtype}"
            )
        return arr, 1e-3
    if enc == "32FC1":
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(
                f"[dto.depth] 32FC1 depth must be float metres, got dtype {arr.dtype}"
            )
        return arr, 1.0
    raise ValueError(
        f"[dto.depth] unsupported depth encoding '{encoding}' (expected 16UC1 mm or 32FC1 m)"
    )


def metric_values_m(raw: np.ndarray, unit: float, max_range_m: float = 20.0) -> np.ndarray:
    """Raw depth readings (any shape) -> float32 metres, NaN for 0, NaN, inf, negative or > max
    range.

    DTO-Lite converts only the pixels it samples instead of the whole image.
    """
    out = raw.astype(np.float32) * np.float32(unit)
    out[~np.isfinite(out) | (out <= 0) | (out > max_range_m)] = np.nan
    return out


def disparity_to_cue(disparity) -> np.ndarray:
    """DTO's relative cue d = 1 / disparity (spec dto §2.4).

    Args:
        disparity: (H, W) relative (affine-invariant) disparity, >= 0.

    Returns:
        (H, W) float32 cue; zero or negative disparities take the smallest positive disparity's
        value, NaN stays NaN (invalid).

    Raises:
        ValueError: wrong shape or no positive disparity at all.
    """
    disp = np.asarray(disparity, np.float32)
    if disp.ndim == 3 and disp.shape[0] == 1:
        disp = disp[0]
    if disp.ndim != 2:
        raise ValueError(f"[dto.depth] disparity must be (H, W), got shape {disp.shape}")
    pos = np.isfinite(disp) & (disp > 0)
    if not pos.any():
        raise ValueError(
            "[dto.depth] disparity has no positive value; is this the model's output?"
        )
    disp = np.where(np.isfinite(disp) & (disp <= 0), disp[pos].min(), disp)
    return (1.0 / disp).astype(np.float32)


class RelativeDepthModel:
    """A relative-depth (disparity) network in ONNX, run with onnxruntime (CUDA when available,
    else CPU).

    The model takes one float32 NCHW RGB image normalised with the ImageNet statistics and returns
    an (1, h, w) or (1, 1, h, w) disparity (Depth Anything V2 convention). Input size: the image is
    resized so its shorter side is ``input_short_side``, each side a multiple of ``multiple``
    (DA-V2: 518 and 14), unless the ONNX input has a fixed size, which then wins. The output is
    resized back bilinearly.

    Args:
        path: the user's ``.onnx`` file.
        input_short_side: shorter input side for dynamic-size models.
        multiple: input sides are rounded to a multiple of this.
        providers: onnxruntime execution providers (default: CUDA if available, then CPU).
    """

    def __init__(self, path, input_short_side: int = 518, multiple: int = 14, providers=None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"[dto.depth] relative depth model not found: '{self.path}' (export your depth "
                "network to ONNX and pass its path; no weights ship with mahmr_ros)"
            )
        available = ort.get_available_providers()
        if providers is None:
            providers = [
                p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available
            ]
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"[dto.depth] cannot load ONNX model '{self.path}': {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(
                f"[dto.depth] '{self.path}' must have one NCHW image input, has "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        self.fixed_hw = (
            (shape[2], shape[3]) if all(isinstance(s, int) for s in shape[2:]) else None
        )
        self.input_short_side = int(input_short_side)
        self.multiple = int(multiple)

    def input_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Network input size for an image of ``image_hw``."""
        if self.fixed_hw is not None:
            return int(self.fixed_hw[0]), int(self.fixed_hw[1])
        H, W = image_hw
        r = self.input_short_side / min(H, W)
        m = self.multiple
        return max(m, int(round(H * r / m)) * m), max(m, int(round(W * r / m)) * m)

    def __call__(self, image_bgr) -> np.ndarray:
        """(H, W) float32 relative disparity of an (H, W, 3) uint8 BGR image."""
        import cv2

        img = np.asarray(image_bgr)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(
                f"[dto.depth] image must be (H, W, 3) uint8 BGR, got {img.shape} {img.dtype}"
            )
        H, W = img.shape[:2]
        h, w = self.input_hw((H, W))
        rgb = (
            cv2.resize(img[..., ::-1], (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
            / 255.0
        )
        x = ((rgb - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None].astype(np.float32)
        out = np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32)
        out = out.reshape(out.shape[-2], out.shape[-1])
        out = np.maximum(out, 0.0)  # the reference applies ReLU to the head's output
        return cv2.resize(out, (W, H), interpolation=cv2.INTER_LINEAR)
