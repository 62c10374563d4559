"""Pipeline config: one table of defaults, unknown keys and wrong types rejected with the valid
choices."""

from __future__ import annotations

import inspect

import pytest
import yaml

from mahmr_ros.pipeline import DEFAULT_CONFIG, ConfigError, load_config, register_estimator
from mahmr_ros.pipeline_config import SETTINGS
from mahmr_ros.tracking import Tracker


class OptionsEstimator:
    """Test double whose constructor takes typed options (its config section is checked against
    them)."""

    body_model = "smpl"

    def __init__(
        self, depth_m: float = 3.0, label: str = "x", flag: bool = False, limit: int | None = None
    ):
        self.depth_m = depth_m


register_estimator("test_options", OptionsEstimator)


@pytest.mark.parametrize(
    "config, match",
    [
        (
            {"dto": {"moed": "off"}},
            r"unknown key 'dto.moed' \(valid: dto.depth_model, dto.mode, dto.solver\)",
        ),
        ({"trackin": {}}, r"unknown section 'trackin' \(valid: estimator, dto, model, offline,"),
        ({"dto": {"mode": 3}}, r"dto.mode=3: expected str"),
        ({"dto": {"mode": "sonar"}}, r"dto.mode must be one of off, prior_only, rgbd, mono"),
        ({"model": {"conf_thresh": "high"}}, r"model.conf_thresh='high': expected float"),
        ({"model": {"conf_thresh": 1.5}}, r"model.conf_thresh=1.5: expected <= 1"),
        ({"tracking": {"enabled": "yes"}}, r"tracking.enabled='yes': expected bool"),
        (
            {"tracking": {"min_iuo": 0.2}},
            r"unknown key 'tracking.min_iuo' \(valid: .*tracking.min_iou",
        ),
        ({"tracking": {"min_iou": "0.2"}}, r"tracking.min_iou='0.2': expected float"),
        (
            {"test_options": {"depth": 2.0}},
            r"unknown key 'test_options.depth' \(valid: .*test_options.depth_m",
        ),
        ({"test_options": {"limit": 2.5}}, r"test_options.limit=2.5: expected int or None"),
        ({"test_options": {"flag": 1}}, r"test_options.flag=1: expected bool"),
        (
            {"offline": {"camera_height_m": "1.2"}},
            r"offline.camera_height_m='1.2': expected float or None",
        ),
        ({"dto": "off"}, r"section 'dto' must be a mapping"),
    ],
)
def test_bad_keys_and_values_are_rejected_with_what_is_valid(config, match):
    with pytest.raises(ConfigError, match=match):
        load_config(config)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)  # callers that catch ValueError keep working


def test_estimator_options_are_checked_against_the_constructor():
    config = load_config(
        {"test_options": {"depth_m": 2, "label": "y", "limit": None}}
    )  # int is a float
    assert config["test_options"] == {"depth_m": 2, "label": "y", "limit": None}


def test_an_estimator_with_kwargs_accepts_any_option():
    register_estimator("test_kwargs", lambda **kwargs: kwargs)
    assert load_config({"test_kwargs": {"anything": [1, 2]}})["test_kwargs"] == {
        "anything": [1, 2]
    }


def test_offline_options_follow_the_offline_estimator_signature():
    """offline.* is checked against OfflineEstimator's keyword arguments: new ones need no edit
    here."""
    from mahmr_ros.offline.estimator import OfflineEstimator

    kwargs = [n for n in inspect.signature(OfflineEstimator).parameters if n != "self"]
    extra = next(n for n in kwargs if f"offline.{n}" not in {s.key for s in SETTINGS})
    default = inspect.signature(OfflineEstimator).parameters[extra].default
    assert load_config({"offline": {extra: default}})["offline"][extra] == default
    with pytest.raises(ConfigError, match=rf"valid: .*offline.{extra}"):
        load_config({"offline": {"no_such_option": 1}})


def test_defaults_come_from_the_settings_table():
    for setting in SETTINGS:
        section, _, name = setting.key.rpartition(".")
        value = DEFAULT_CONFIG[section][name] if section else DEFAULT_CONFIG[name]
        assert value == setting.default, setting.key
    assert load_config(None) == DEFAULT_CONFIG


def test_documented_estimator_and_tracker_options_match_their_constructors():
    """The table documents keyword arguments; their defaults must be the constructors' own."""
    from mahmr_ros.model.estimator import MahmrEstimator
    from mahmr_ros.offline.estimator import OfflineEstimator

    owners = {"model": MahmrEstimator, "offline": OfflineEstimator, "tracking": Tracker}
    for setting in SETTINGS:
        section, _, name = setting.key.rpartition(".")
        if section not in owners or setting.key == "tracking.enabled":
            continue
        parameter = inspect.signature(owners[section]).parameters.get(name)
        assert parameter is not None, (
            f"{setting.key} is not a keyword argument of {owners[section].__name__}"
        )
        assert parameter.default == setting.default, setting.key


def test_ros_parameter_file_is_accepted_with_its_node_keys(tmp_path):
    path = tmp_path / "params.yaml"
    ros = {"mahmr": {"ros__parameters": {"use_sim_time": True, "autostart": False,
                                         "input.lazy": False, "dto.mode": "rgbd",
                                         "model.conf_thresh": 0.4}}}  # fmt: skip
    path.write_text(yaml.safe_dump(ros))
    config = load_config(path)
    assert config["dto"]["mode"] == "rgbd" and config["model"]["conf_thresh"] == 0.4
    assert "input" not in config and "use_sim_time" not in config
    with pytest.raises(ConfigError, match="unknown section 'input'"):
        load_config({"input": {"lazy": False}})  # a plain pipeline config has no node keys
