"""Neural-network building blocks: modules, their functional forms and initialisation."""
from . import functional, init
from .modules import (
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Linear,
    Module,
    MSELoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)

__all__ = ["functional", "init", "Module", "Parameter", "Linear", "ReLU", "Tanh", "Sigmoid", "Flatten", "Dropout",
           "Sequential", "MSELoss", "CrossEntropyLoss"]
