"""mahmr_ros: metric, multi-person, full-body 3D human meshes from one camera.

The core (``body``, ``model``, ``dto``, ``runtime``, ``pipeline``) is ROS-free; ``mahmr_ros.ros``
is the thin ROS 2 shell. The generated message module ``mahmr_ros.msg`` lives in the colcon install
tree; extending the package path lets a source checkout (``pip install -e .`` or the repo on
``sys.path``) see it too.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # noqa: F821 - finds mahmr_ros/msg in the colcon install

__version__ = "0.1.0"

from mahmr_ros.types import Estimation, FrameResult, HumanEstimate, MeshTopology  # noqa: E402

__all__ = ["Estimation", "FrameResult", "HumanEstimate", "MeshTopology", "__version__"]
