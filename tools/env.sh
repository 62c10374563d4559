#!/usr/bin/env bash
# Run a command in the project environment: the venv, the venv as the ROS prefix (ROS 2 Jazzy wheels), and the
# colcon install of this package (generated messages). MAHMR_TEST_FIXTURES=1 adds the test-only tf2_msgs.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
set +u
# shellcheck disable=SC1091
source "$root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$root/.venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ANNY_CACHE_DIR="${ANNY_CACHE_DIR:-$root/build/anny_cache}"
# colcon's setup scripts prepend; set COLCON_TRACE etc. are not needed.
if [ -f "$root/build/install/local_setup.bash" ]; then
  # shellcheck disable=SC1091
  source "$root/build/install/local_setup.bash"
fi
if [ "${MAHMR_TEST_FIXTURES:-0}" = "1" ] && [ -f "$root/build/fixtures/install/local_setup.bash" ]; then
  # shellcheck disable=SC1091
  source "$root/build/fixtures/install/local_setup.bash"
fi
# The source tree wins over the colcon-installed copy of mahmr_ros (which a `make` rebuilds only when run), so
# `tools/env.sh python some_script.py` from any folder runs the code you are editing; the generated
# mahmr_ros.msg is still found in the install tree (mahmr_ros/__init__.py extends the package path).
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$@"
