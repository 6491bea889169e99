"""Neural-network building blocks: modules, their functional forms and initialisation."""
from . import functional, init
from .modules import (
    ELU,
    GELU,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Hardtanh,
    HuberLoss,
    Identity,
    KLDivLoss,
    L1Loss,
    LeakyReLU,
    Linear,
    LogSigmoid,
    LogSoftmax,
    Module,
    MSELoss,
    NLLLoss,
    Parameter,
    ReLU,
    ReLU6,
    Sequential,
    Sigmoid,
    SiLU,
    SmoothL1Loss,
    Softmax,
    Softplus,
    Tanh,
)

__all__ = ["functional", "init", "Module", "Parameter", "Linear", "ReLU", "Tanh", "Sigmoid", "Flatten", "Dropout",
           "Sequential", "MSELoss", "CrossEntropyLoss", "Identity", "Softmax", "LogSoftmax", "LeakyReLU", "ELU",
           "GELU", "SiLU", "Softplus", "Hardtanh", "ReLU6", "LogSigmoid", "BCELoss", "BCEWithLogitsLoss", "L1Loss",
           "SmoothL1Loss", "HuberLoss", "NLLLoss", "KLDivLoss"]


def __getattr__(name):  # nn.parallel on first use, as torch.nn.parallel (it imports nbgrad.distributed)
    if name == "parallel":
        from importlib import import_module

        return import_module(f"{__name__}.parallel")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
