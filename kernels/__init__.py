"""Compiled code of nbgrad: kernels over flat buffers and the backward executor.

Installed as ``nbgrad.kernels``. Nothing here imports ``nbgrad``: every
function is a Numba kernel (or a helper for one) over flat contiguous arrays,
integer shape arrays and the tape's rows.
"""
