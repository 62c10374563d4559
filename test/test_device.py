"""Device names from configs -> torch.device, with errors that name the caller."""

import pytest
import torch

from mahmr_ros.device import resolve_device
from mahmr_ros.runtime.backend import BackendError
from mahmr_ros.runtime.backend import resolve_device as runtime_resolve_device


def test_names_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_unknown_name_is_a_clear_error_naming_the_caller():
    with pytest.raises(
        ValueError, match=r"\[body\.smpl\] unknown device 'gpu0' \(auto, cpu, cuda\[:i\]\)"
    ):
        resolve_device("gpu0", where="body.smpl")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the error raised on a machine without CUDA"
)
def test_cuda_without_cuda():
    with pytest.raises(
        ValueError, match=r"\[device\] device 'cuda:1' requested but torch sees no CUDA"
    ):
        resolve_device("cuda:1")
    with pytest.raises(BackendError, match=r"\[runtime\] device 'cuda' requested"):
        runtime_resolve_device("cuda")  # the runtime reports it as a backend that cannot run here


def test_old_import_paths_are_the_same_resolver():
    with pytest.warns(DeprecationWarning, match="use mahmr_ros.device.resolve_device"):
        from mahmr_ros.body import resolve_device as body_resolve_device
    assert body_resolve_device is resolve_device
    with pytest.raises(BackendError, match="unknown device 'gpu0'"):
        runtime_resolve_device("gpu0")
