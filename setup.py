"""pip install of the ROS-free core (``pip install -e .``; extras: [offline], [train], [dev]).

ROS users build the package with colcon instead (CMakeLists.txt: messages + this Python package).
"""

from pathlib import Path

from setuptools import find_packages, setup


def _requirements(name: str) -> list[str]:
    lines = (Path(__file__).parent / "requirements" / f"{name}.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


setup(
    name="mahmr_ros",
    version="0.1.0",
    description="Metric, multi-person 3D human meshes from one camera (Metric-Aware HMR + DTO)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["mahmr_ros", "mahmr_ros.*", "training", "training.*"]),
    include_package_data=True,
    install_requires=_requirements("core"),
    extras_require={
        "offline": _requirements("offline"),
        "dev": _requirements("dev"),
    },
    entry_points={"console_scripts": ["mahmr = mahmr_ros.cli:main"]},
)
