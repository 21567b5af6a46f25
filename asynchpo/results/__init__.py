"""Results as an ``xarray.Dataset`` (netCDF, zarr), and studies rebuilt from one."""

from __future__ import annotations

from asynchpo.results._xarray import from_xarray, to_xarray

__all__ = ["from_xarray", "to_xarray"]
