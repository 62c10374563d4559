"""One frame, start to finish: estimator -> DTO -> tracking (ROS-free).

The node, the CLI, replay and ``training/eval`` all drive this class. Estimators are pluggable: the
Metric-Aware HMR network (``mahmr``) and the offline default (``offline``) are built in, and
anything else can be added with ``register_estimator``. A config is a nested dict (or YAML file);
the node's ROS parameter file (``config/mahmr.yaml``, dotted keys under ``ros__parameters``) is
accepted as-is, so one file serves both. Keys, defaults and checks of a config:
``mahmr_ros.pipeline_config``.
"""

from __future__ import annotations

import functools
import importlib
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

# DEFAULT_CONFIG, ConfigError and load_config stay importable from here (public names since 0.1).
from mahmr_ros.pipeline_config import DEFAULT_CONFIG, DTO_MODES, ConfigError, load_config  # noqa: F401
from mahmr_ros.tracking import Tracker
from mahmr_ros.types import Estimation, FrameResult, HumanEstimate, MeshTopology


class InputError(ValueError):
    """A frame the pipeline cannot process (bad image, bad K, size mismatch...). Skip it, do not
    crash."""


@runtime_checkable
class Estimator(Protocol):
    """What an estimator plugged into the pipeline provides.

    ``estimate`` gets a validated BGR image and either the caller's K (original-image pixels) or
    None, and returns the people in that camera's frame. ``K=None`` means the estimator chooses the
    camera (e.g. the network's FoV head) and reports it in ``Estimation.K_used`` with
    ``K_estimated=True``. Everything the pipeline uses travels in typed fields
    (``HumanEstimate.height_sigma_m`` for a measured height, the ``topology()`` faces for DTO's
    z-buffer); ``HumanEstimate.extras`` is not read (except the deprecated
    ``extras["height_sigma_m"]`` of older estimators, moved to the typed field with a warning).

    Optional methods (looked up with ``getattr``, so they are not protocol members an
    ``isinstance`` check would demand):

    * ``shape_model() -> mahmr_ros.dto.ShapeModel | None``: the SMPL(-A) shape space of the
      estimator's body, so DTO updates the shape coefficients with the scale (without it people are
      only scaled along the ray, ``height_m`` updated).
    * ``close() -> None``: free model weights / GPU memory.
    """

    body_model: str

    def topology(self) -> MeshTopology: ...

    def estimate(self, image_bgr: np.ndarray, K: np.ndarray | None) -> Estimation: ...


# name -> factory, or "module:attribute" resolved on first use (keeps heavy imports lazy).
_REGISTRY: dict[str, Callable[..., Estimator] | str] = {
    "mahmr": "mahmr_ros.model.estimator:MahmrEstimator",
    "offline": "mahmr_ros.offline.estimator:OfflineEstimator",
}


def register_estimator(name: str, factory: Callable[..., Estimator] | str) -> None:
    """Make ``factory(**kwargs) -> Estimator`` selectable as ``estimator: <name>``."""
    _REGISTRY[name] = factory


def available_estimators() -> list[str]:
    return sorted(_REGISTRY)


def estimator_factory(name: str) -> Callable[..., Estimator]:
    """The factory registered as ``name`` (a "module:attribute" entry is imported now); unknown
    names list the known ones (KeyError)."""
    if name not in _REGISTRY:
        raise KeyError(
            f"[pipeline] unknown estimator '{name}' (known: {', '.join(available_estimators())})"
        )
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, attr = factory.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    return factory


def create_estimator(name: str, **kwargs) -> Estimator:
    """Build a registered estimator by name; unknown names list the known ones."""
    return estimator_factory(name)(**kwargs)


def resolve_estimator_name(config: Mapping) -> str:
    """``auto`` -> ``mahmr`` when weights and SMPL files are configured, else ``offline``."""
    name = config.get("estimator", "auto")
    if name != "auto":
        return name
    model = config.get("model", {})
    return "mahmr" if model.get("weights") and model.get("smpl_path") else "offline"


def validate_frame(
    image_bgr: np.ndarray, K: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check an input frame; returns (H, W, 3) uint8 BGR and a float64 K, or raises
    ``InputError``."""
    image = np.asarray(image_bgr)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"[pipeline] expected an HxWx3 BGR image, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"[pipeline] image too small: {image.shape[1]}x{image.shape[0]} px")
    if image.dtype != np.uint8:
        raise InputError(f"[pipeline] expected uint8 pixels, got {image.dtype}")
    if K is None:
        return image, None
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(K)):
        raise InputError("[pipeline] K has non-finite entries")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(
            f"[pipeline] K is uncalibrated (fx={K[0, 0]}, fy={K[1, 1]}); expected fx, fy > 0"
        )
    return image, K


class Pipeline:
    """Image (+ optional K, depth) in, metric humans with stable ids out.

    Example:
        pipe = Pipeline.from_config({"estimator": "offline"})
        result = pipe.process(cv2.imread("people.jpg"))
    """

    def __init__(self, estimator: Estimator, config: Mapping | None = None):
        self.config = load_config(config)
        self.estimator = estimator
        self.body_model = estimator.body_model
        self.dto_mode = self.config["dto"].get("mode", "off")
        self._dto, self._depth_model = _make_dto(
            self.config["dto"], _shape_model_of(estimator), faces=estimator.topology().faces
        )
        self.tracker = None
        if self.config["tracking"].get("enabled", True):
            self.tracker = Tracker(
                **{k: v for k, v in self.config["tracking"].items() if k != "enabled"}
            )

    @classmethod
    def from_config(cls, path_or_dict: str | Path | Mapping | None = None) -> Pipeline:
        """Build the estimator named in the config (``auto`` picks one) and wrap it."""
        config = load_config(path_or_dict)
        name = resolve_estimator_name(config)
        section = config.get("model", {}) if name == "mahmr" else config.get(name, {})
        return cls(create_estimator(name, **section), config)

    def topology(self) -> MeshTopology:
        return self.estimator.topology()

    def process(
        self,
        image_bgr: np.ndarray,
        K: np.ndarray | None = None,
        depth: np.ndarray | None = None,
        stamp: object = None,
        *,
        stamp_ns: int | None = None,
    ) -> FrameResult:
        """Run one frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR (or (H, W) mono, expanded to BGR).
            K: (3, 3) intrinsics of this image in pixels (CameraInfo.k), or None to let the
                estimator choose (FoV head / assumed FoV; the result then has
                ``K_estimated=True``).
            depth: (H, W) metric depth registered to the image, metres (0/NaN = invalid), or None.
            stamp: any caller object, passed through to ``FrameResult.stamp`` untouched. Kept for
                compatibility; when ``stamp_ns`` is None it also gives the frame's time by this
                rule: an integer (``int``, numpy integer) is nanoseconds, a float is seconds,
                anything else (None, bool, a ROS Time, a string) carries no time.
            stamp_ns: capture time in integer nanoseconds (e.g. ``header.stamp`` as sec * 1e9 +
                nanosec); wins over ``stamp`` as the frame's time. Without any time the tracker
                assumes ``tracking.frame_period_s`` between frames.

        Returns:
            FrameResult with the people in the camera frame of ``K_used``.

        Raises:
            InputError: the frame cannot be processed (the caller should skip it), including a time
                that cannot be one (``stamp_ns`` not an integer, a non-finite float ``stamp``, or a
                float ``stamp`` so large that it must be nanoseconds).
        """
        t0 = time.perf_counter()
        image, K = validate_frame(image_bgr, K)
        frame_ns, t_s = _frame_time(stamp, stamp_ns)
        if depth is not None:
            depth = np.asarray(depth, dtype=np.float32)
            if depth.shape[:2] != image.shape[:2]:
                raise InputError(
                    f"[pipeline] depth {depth.shape[1]}x{depth.shape[0]} does not match image "
                    f"{image.shape[1]}x{image.shape[0]} (register depth to the colour camera)"
                )
        est = self.estimator.estimate(image, K)
        timings = {f"estimator.{k}": v for k, v in est.timings_ms.items()}
        humans: list[HumanEstimate] = [_typed_legacy_extras(h) for h in est.humans]
        # Ids first (from the raw positions), so DTO can smooth per track; velocities after DTO,
        # from the refined positions (mahmr_ros.tracking explains why association stays raw).
        if self.tracker is not None:
            humans = self.tracker.assign(humans, t_s, image=image)
        if self._dto is not None and humans:
            t = time.perf_counter()
            humans = self._refine_humans(
                humans, est.K_used, depth, image, timings, getattr(est, "floor", None)
            )
            timings["dto"] = (time.perf_counter() - t) * 1e3
        if self.tracker is not None:
            t = time.perf_counter()
            humans = self.tracker.update_motion(humans)
            timings["tracking"] = (time.perf_counter() - t) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return FrameResult(
            humans=humans,
            K_used=np.asarray(est.K_used, dtype=np.float64).reshape(3, 3),
            K_estimated=est.K_estimated if K is None else False,
            timings_ms=timings,
            body_model=self.body_model,
            stamp=stamp,
            image_hw=image.shape[:2],
            stamp_ns=frame_ns,
            floor=getattr(est, "floor", None),
        )

    def _refine_humans(self, humans, K, depth, image, timings, floor=None):
        """DTO in the configured mode; a mode whose depth is missing this frame falls back to the
        prior.

        DTO-Lite also gets the estimator's floor (``Estimation.floor``) as a cue
        (``mahmr_ros.dto.floor``).
        """
        kind = "metric"
        if self.dto_mode == "mono":
            t = time.perf_counter()
            depth, kind = self._depth_model(image), "disparity"
            timings["dto.depth_model"] = (time.perf_counter() - t) * 1e3
        elif self.dto_mode != "rgbd":
            depth = None
        extra = {}
        if (
            floor is not None and self.config["dto"].get("solver", "lite") == "lite"
        ):  # DTOLite takes it
            extra = {"floor": floor, "image_hw": image.shape[:2]}
        if depth is None:
            return self._dto(humans, K, **extra)
        return self._dto(humans, K, depth=depth, depth_kind=kind, **extra)

    def close(self) -> None:
        """Free the estimator's resources (model weights, GPU memory) where it supports it."""
        close = getattr(self.estimator, "close", None)
        if close is not None:
            close()


def _shape_model_of(estimator):
    """The estimator's optional ``shape_model()`` (SMPL shape space for DTO's beta update), else
    None."""
    shape_model = getattr(estimator, "shape_model", None)
    return shape_model() if callable(shape_model) else None


def _make_dto(section: Mapping, shape_model=None, faces=None):
    """(DTO callable or None, relative depth model or None) for the ``dto`` config section.

    ``shape_model`` (SMPL bodies) lets DTO update the shape coefficients with the scale; without it
    people are only scaled along the ray (and ``height_m`` updated). ``faces`` (F, 3), the
    estimator's topology, gives the full solver's z-buffer (DTO-Lite samples vertices and needs
    none).

    Raises:
        ValueError: unknown mode/solver, or mode ``mono`` without ``depth_model``.
        FileNotFoundError: the depth model file does not exist.
    """
    mode, solver = section.get("mode", "off"), section.get("solver", "lite")
    if mode not in DTO_MODES:
        raise ValueError(
            f"[pipeline] dto.mode must be one of {', '.join(DTO_MODES)}, got '{mode}'"
        )
    if solver not in ("lite", "full"):
        raise ValueError(f"[pipeline] dto.solver must be lite or full, got '{solver}'")
    if mode == "off":
        return None, None
    from mahmr_ros import dto

    depth_model = None
    if mode == "mono":
        if not section.get("depth_model"):
            raise ValueError(
                "[pipeline] dto.mode mono needs dto.depth_model (an ONNX relative depth model)"
            )
        depth_model = dto.RelativeDepthModel(section["depth_model"])
    if solver == "lite":
        return dto.DTOLite(shape_model=shape_model), depth_model
    return functools.partial(dto.refine, shape_model=shape_model, faces=faces), depth_model


def _typed_legacy_extras(human: HumanEstimate) -> HumanEstimate:
    """Deprecated: an estimator that still reports a measured height as
    ``extras["height_sigma_m"]`` (the contract before ``HumanEstimate.height_sigma_m``) gets it
    moved to the typed field, with a warning."""
    sigma = human.extras.get("height_sigma_m")
    if sigma is None or human.height_sigma_m is not None:
        return human
    warnings.warn(
        "[pipeline] HumanEstimate.extras['height_sigma_m'] is deprecated: set "
        "HumanEstimate.height_sigma_m",
        DeprecationWarning,
        stacklevel=3,
    )
    return human.replace(height_sigma_m=sigma)


# A float stamp above this many seconds (3,170 years) can only be nanoseconds passed as a float.
_MAX_STAMP_S = 1e11


def _frame_time(
    stamp: object = None, stamp_ns: int | None = None
) -> tuple[int | None, float | None]:
    """The frame's time from ``Pipeline.process``'s ``stamp_ns`` / ``stamp`` (rule in its
    docstring).

    Returns:
        (integer nanoseconds or None, seconds as float or None = no time).

    Raises:
        InputError: ``stamp_ns`` is not an integer, or a float ``stamp`` is not finite or is too
            large to be seconds.
    """
    if stamp_ns is not None:
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, numbers.Integral):
            raise InputError(
                f"[pipeline] stamp_ns must be an integer number of nanoseconds, got {stamp_ns!r} "
                f"({type(stamp_ns).__name__}); pass seconds as a float through stamp= instead"
            )
        return int(stamp_ns), int(stamp_ns) * 1e-9
    if isinstance(stamp, bool) or not isinstance(stamp, numbers.Real):
        return None, None
    if isinstance(stamp, numbers.Integral):
        return int(stamp), int(stamp) * 1e-9  # nanoseconds
    t_s = float(stamp)
    if not math.isfinite(t_s) or abs(t_s) >= _MAX_STAMP_S:
        raise InputError(
            f"[pipeline] a float stamp is seconds, got {stamp!r}: pass integer nanoseconds as "
            "stamp_ns= (or as an int stamp)"
        )
    return round(t_s * 1e9), t_s
