"""CUDA: not built. ``matmul.allow_tf32`` and the like may be set (nothing changes)."""
import types

matmul = types.SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                               allow_bf16_reduced_precision_reduction=True)


def is_built():
    return False
