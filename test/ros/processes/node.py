"""``mahmr_node`` as its own process (what ``ros2 run mahmr_ros mahmr_node`` runs), with the test
estimator ``test_known`` registered first so the multi-process tests need no model files.
Arguments: ROS arguments."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # test/ros: known.py

import known  # noqa: E402, F401 - registers test_known

from mahmr_ros.ros.node import main  # noqa: E402

sys.exit(main())
