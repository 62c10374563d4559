"""Test and benchmark utilities with known ground truth (synthetic crowds); never used at run
time."""

from mahmr_ros.testing.crowd import CrowdScene, betas_for_height, make_crowd, synthetic_shape_model

__all__ = ["CrowdScene", "betas_for_height", "make_crowd", "synthetic_shape_model"]
