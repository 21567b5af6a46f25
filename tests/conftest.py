from __future__ import annotations

import pytest

from asynchpo.acquisition import cupy_namespace, gpu_available, numpy_namespace


@pytest.fixture(params=["numpy", "cupy"])
def ns(request):
    """The same array test on NumPy and, where a GPU is visible, on CuPy."""
    if request.param == "cupy":
        if not gpu_available():
            pytest.skip("no GPU with CuPy here")
        return cupy_namespace()
    return numpy_namespace()
