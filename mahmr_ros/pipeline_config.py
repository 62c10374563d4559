"""The pipeline's configuration: one table of the documented keys (default, type, range), loading
and checks.

A config is a nested dict (or a YAML file, or the node's ROS parameter file) with these sections::

    estimator             auto | mahmr | offline | any registered name
    model.*               the MA-HMR estimator's options (``MahmrEstimator`` keyword arguments)
    <estimator name>.*    that estimator's options, e.g. offline.*
                          (``OfflineEstimator`` keyword arguments)
    dto.*                 DTO refinement (mode, solver, depth model)
    tracking.*            track ids (``enabled`` + ``Tracker`` keyword arguments)

``SETTINGS`` is the one source of the defaults: ``DEFAULT_CONFIG`` is built from it and the ROS
node declares its parameters from it (``mahmr_ros/ros/params.py``). An estimator or tracker option
that ``SETTINGS`` does not list is still a valid key: it is checked against the keyword arguments
of the estimator's (or the tracker's) constructor, so a new option needs no edit here. Unknown keys
and wrong types raise ``ConfigError`` naming the key and the valid ones.
"""

from __future__ import annotations

import copy
import functools
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DTO_MODES = ("off", "prior_only", "rgbd", "mono")
DTO_SOLVERS = ("lite", "full")
#: Estimator name -> its config section, where the two differ (every other estimator reads
#: ``<name>.*``).
ESTIMATOR_SECTIONS = {"mahmr": "model"}
#: Keys of a ROS parameter file that belong to the node or to every ROS node, not to the pipeline:
#: skipped when such a file is loaded (see ``mahmr_ros/ros/params.py`` for the node's own).
ROS_ONLY_KEYS = ("autostart", "input", "publish", "use_sim_time", "start_type_description_service",
                 "qos_overrides")  # fmt: skip


class ConfigError(ValueError):
    """A config key or value the pipeline cannot use; the message names the key and what is
    valid."""


@dataclass(frozen=True)
class Setting:
    """One documented config key.

    Attributes:
        key: dotted name, ``<section>.<name>`` (or ``estimator``).
        default: default value; None = not set (the estimator's own default applies), then ``kind``
            gives the type of a set value.
        description: one line for users (shown in config/mahmr.yaml, the README and the ROS
            descriptor).
        min_value, max_value: inclusive numeric range, or None.
        choices: allowed string values, or empty.
        kind: value type when ``default`` is None.
        also: further types accepted from Python or YAML (e.g. a dict for ``model.config``), not by
            ROS.
    """

    key: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    kind: type | None = None
    also: tuple[type, ...] = ()

    @property
    def value_type(self) -> type:
        return self.kind if self.default is None else type(self.default)

    def check(self, value: Any) -> None:
        """Raise ConfigError unless ``value`` has the type, range and choice this key allows."""
        if value is None and self.default is None:
            return
        accepted = (self.value_type, *self.also, *((type(None),) if self.default is None else ()))
        if not _is_instance(value, accepted):
            raise ConfigError(
                f"[config] {self.key}={value!r}: expected {_type_names(accepted)}, got "
                f"{type(value).__name__}"
            )
        if self.choices and isinstance(value, str) and value not in self.choices:
            raise ConfigError(
                f"[config] {self.key} must be one of {', '.join(self.choices)}, got {value!r}"
            )
        if (
            isinstance(value, (int, float))
            and self.min_value is not None
            and value < self.min_value
        ):
            raise ConfigError(f"[config] {self.key}={value!r}: expected >= {self.min_value:g}")
        if (
            isinstance(value, (int, float))
            and self.max_value is not None
            and value > self.max_value
        ):
            raise ConfigError(f"[config] {self.key}={value!r}: expected <= {self.max_value:g}")


SETTINGS: tuple[Setting, ...] = (
    Setting("estimator", "auto", "estimator: auto (mahmr if model.weights and model.smpl_path are "
            "set, else offline), mahmr, offline, or any registered name"),
    Setting("model.config", "fov_kid", "MA-HMR network config: fov_kid, fov or "
        "default", also=(Mapping,)),
    Setting("model.weights", "", "path to the MA-HMR checkpoint (.bin/.pth); empty = "
        "none", also=(Path,)),
    Setting("model.smpl_path", "", "path to the SMPL neutral model (.npz/.pkl); empty = "
        "none", also=(Path,)),
    Setting("model.kid_template_path", "", "path to the SMIL kid template (.npy); empty = no kid "
            "blend",
            also=(Path,)),
    Setting("model.conf_thresh", 0.3, "keep people with detection confidence > this (strict, as "
            "official)",
            0.0, 1.0),
    Setting("model.device", "auto", "torch device: auto, cpu, cuda, cuda:N"),
    Setting("model.backend", "auto", "inference backend: auto, torch, onnx, tensorrt"),
    Setting("model.precision", "fp32", "inference precision: fp32, fp16, bf16"),
    Setting("dto.mode", "prior_only", "DTO refinement: off, prior_only (height prior, no depth), "
            "rgbd (registered depth image) or mono (relative depth from "
            "dto.depth_model)", choices=DTO_MODES),
    Setting("dto.solver", "lite", "DTO solver: lite (per frame, smoothed per track, for streams) "
            "or full (the whole-frame solver, for single images and pseudo ground "
            "truth)", choices=DTO_SOLVERS),
    Setting("dto.depth_model", "", "ONNX monocular depth model for dto.mode mono (e.g. your Depth "
            "Anything V2 export); empty = none"),
    Setting("offline.camera_height_m", None, "offline estimator: camera height above the floor "
            "people stand on (m); set, each person is sized from their feet (recognises "
            "children); unset = unknown", 0.0,
            20.0, kind=float),
    Setting("offline.camera_pitch_deg", 0.0, "offline estimator: downward tilt of the optical "
            "axis (deg), used with offline.camera_height_m", -90.0, 90.0),
    Setting("tracking.enabled", True, "give people stable ids across frames (and velocities)"),
    Setting("tracking.reid_window_s", 2.0, "a person unseen for longer than this gets a new id "
            "(s)", 0.0,
            60.0),
    Setting("tracking.max_distance_m", 1.0, "pelvis distance (after constant-velocity prediction) "
            "that costs as much as no box overlap (m)", 0.05, 10.0),
)  # fmt: skip

_BY_KEY = {s.key: s for s in SETTINGS}
_NOT_LOOKED_UP = object()


def _nested(settings) -> dict:
    config: dict = {}
    for s in settings:
        section, _, name = s.key.rpartition(".")
        (config.setdefault(section, {}) if section else config)[name] = copy.deepcopy(s.default)
    return config


#: The defaults of every documented key, as the nested dict ``load_config`` merges a user config
#: over.
DEFAULT_CONFIG: dict = _nested(SETTINGS)


def load_config(path_or_dict: str | Path | Mapping | None) -> dict:
    """A user config (nested dict, YAML path or ROS parameter file) merged over ``DEFAULT_CONFIG``,
    checked.

    A ROS parameter file (``{node: {ros__parameters: {"a.b": 1}}}``) may also hold the node's own
    keys (``ROS_ONLY_KEYS``); they are skipped.

    Raises:
        ConfigError: an unknown key (the message lists the valid ones) or a value of the wrong
            type/range.
        OSError: the YAML file cannot be read.
    """
    user: Mapping = {}
    if isinstance(path_or_dict, (str, Path)):
        import yaml

        with open(path_or_dict, encoding="utf-8") as f:
            user = yaml.safe_load(f) or {}
    elif path_or_dict is not None:
        user = path_or_dict
    if not isinstance(user, Mapping):
        raise ConfigError(f"[config] expected a mapping of sections, got {type(user).__name__}")
    user, is_ros_file = _unwrap_ros_params(user)
    if is_ros_file:
        user = {k: v for k, v in user.items() if k not in ROS_ONLY_KEYS}
    config = _deep_merge(copy.deepcopy(DEFAULT_CONFIG), user)
    validate_config(config)
    return config


def validate_config(config: Mapping) -> None:
    """Raise ConfigError for an unknown section or key, or a value of the wrong type or range."""
    from mahmr_ros.pipeline import available_estimators

    estimators = {ESTIMATOR_SECTIONS.get(name, name): name for name in available_estimators()}
    sections = sorted(
        {"dto", "tracking", *estimators, *(s.key.split(".")[0] for s in SETTINGS)} - {"estimator"}
    )
    for key, value in config.items():
        if key == "estimator":
            _BY_KEY[key].check(value)
        elif key not in sections:
            raise ConfigError(
                f"[config] unknown section '{key}' (valid: estimator, {', '.join(sections)})"
            )
        elif not isinstance(value, Mapping):
            raise ConfigError(f"[config] section '{key}' must be a mapping of keys, got {value!r}")
        else:
            _check_section(key, value, estimators.get(key))


def _check_section(section: str, values: Mapping, estimator: str | None) -> None:
    """Documented keys against SETTINGS; the others against the constructor of the section's
    class."""
    options: Any = _NOT_LOOKED_UP
    for name, value in values.items():
        key = f"{section}.{name}"
        if key in _BY_KEY:
            _BY_KEY[key].check(value)
            continue
        if (
            options is _NOT_LOOKED_UP
        ):  # first undocumented key: only now import the class (may import torch)
            options = _section_options(section, estimator)
        if options is None:  # **kwargs, or not importable here: building the estimator reports it
            continue
        if name not in options:
            documented = [s.key for s in SETTINGS if s.key.startswith(section + ".")]
            valid = sorted({*documented, *(f"{section}.{n}" for n in options)})
            raise ConfigError(
                f"[config] unknown key '{key}' (valid: {', '.join(valid) or 'none'})"
            )
        if not _is_instance(value, options[name]):
            raise ConfigError(
                f"[config] {key}={value!r}: expected {_type_names(options[name])}, got "
                f"{type(value).__name__}"
            )


def _section_options(section: str, estimator: str | None) -> dict[str, tuple[type, ...]] | None:
    """Keyword arguments (name -> accepted types) of the class a section configures; None =
    unchecked."""
    if section == "tracking":
        from mahmr_ros.tracking import Tracker

        return {"enabled": (bool,), **_keyword_arguments(Tracker)}
    if estimator is None:
        return {}
    from mahmr_ros.pipeline import estimator_factory

    try:
        return _keyword_arguments(estimator_factory(estimator))
    except ImportError:
        return None


@functools.lru_cache(maxsize=None)
def _keyword_arguments(factory) -> dict[str, tuple[type, ...]] | None:
    """``factory``'s keyword arguments -> accepted types (() = any); None when it takes
    ``**kwargs``."""
    try:
        signature = inspect.signature(factory, eval_str=True)
    except (NameError, TypeError, ValueError):
        return None
    options = {}
    for name, p in signature.parameters.items():
        if p.kind == p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            options[name] = _annotation_types(p)
    return options


def _annotation_types(p: inspect.Parameter) -> tuple[type, ...]:
    """Types a value of parameter ``p`` may have, from its annotation (else its default); () =
    any."""
    annotation = p.annotation
    if annotation is p.empty:
        return () if p.default is p.empty or p.default is None else (type(p.default),)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    resolved = tuple(typing.get_origin(m) or m for m in members)
    return resolved if all(isinstance(t, type) for t in resolved) else ()


def _is_instance(value: Any, accepted: tuple[type, ...]) -> bool:
    """isinstance with config rules: () = any; bool is not an int; an int is a valid float."""
    if not accepted:
        return True
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int) and float in accepted:
        return True
    return isinstance(value, accepted)


def _type_names(accepted: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in accepted)


def _unwrap_ros_params(cfg: Mapping) -> tuple[dict, bool]:
    """``{node: {ros__parameters: {"a.b": 1}}}`` -> (``{"a": {"b": 1}}``, True); nested dicts pass
    through."""
    is_ros_file = False
    for value in cfg.values():
        if isinstance(value, Mapping) and "ros__parameters" in value:
            cfg, is_ros_file = value["ros__parameters"], True
            break
    nested: dict = {}
    for key, value in cfg.items():
        parts = str(key).split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, Mapping):
            node[parts[-1]] = _deep_merge(node.get(parts[-1], {}), _unwrap_ros_params(value)[0])
        else:
            node[parts[-1]] = value
    return nested, is_ros_file


def _deep_merge(base: dict, override: Mapping) -> dict:
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _deep_merge(base[key], value)
        else:
            base[key] = value
    return base
