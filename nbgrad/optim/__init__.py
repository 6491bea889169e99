"""Optimizers with PyTorch's update rules and defaults; ``step()`` is one compiled call.

The optimizer keeps a table of its parameters (see ``kernels/optim.py``) and
rebuilds it only when a parameter's storage or leaf node changed. State
buffers (momentum, Adam's moments, RMSprop's and Adagrad's sums) are NumPy
arrays the kernel updates in place; ``optimizer.state[p]`` shows them as tensors.
Each optimizer is one declaration: its kernel, its state buffers, which
hyper-parameter columns its group values fill, and its checks.
"""
import operator

import numpy as np

from .. import _compile_ahead
from .._tensor import Tensor, _wrap
from ..autograd import tape, versions
from ..autograd.node import AccumulateGrad
from ..compiler import recording
from ..kernels import optim as kernel
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Holds ``param_groups`` (dicts with ``params`` and hyper-parameters) and per-parameter state."""

    kind = None
    state_names = ()  # the state buffers of a parameter, in table columns STATE0, STATE1, STATE2
    hyper_columns = ()  # the hyper-parameter table's columns that ``_hyper_row``'s values fill, in order
    counts_steps = False  # state["step"] is PyTorch's count of steps, read and written at every step

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.param_groups = []
        self.state = {}
        self._table_key = self._hyper_key = None
        groups = list(params) if not isinstance(params, Tensor) else None
        if groups is None:
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a Tensor")
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)
        if self.kind is not None:  # on a first run, a helper process compiles the step meanwhile
            for dtype in {p._data.dtype.name for group in self.param_groups for p in group["params"]}:
                _compile_ahead.ask(f"optimizer {self.kind} {dtype}")

    def add_param_group(self, group):
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
            if not p.requires_grad:
                raise ValueError("optimizing a parameter that doesn't require gradients")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]) or len({id(p) for p in group["params"]}) < len(group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self._check(group)
        self.param_groups.append(group)
        self._table_key = None

    def _check(self, group):
        for name, label in (("lr", "learning rate"), ("eps", "epsilon value"), ("momentum", "momentum value"),
                            ("weight_decay", "weight_decay value")):  # PyTorch's words
            if name in group and group[name] < 0:
                raise ValueError(f"Invalid {label}: {group[name]}")

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.zero_()

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def _state_in_use(self, group):
        """The state buffers the kernel reads for this group's options (others are not made)."""
        return self.state_names

    def _initial_value(self, name):
        """What a new state buffer is filled with."""
        return 0

    def _key(self):
        """What the compiled step's table is built from, in order: the table is rebuilt when any
        of it is another object (a parameter added or removed, new storage, a state reset, a state
        buffer replaced). This runs at every step: keep it lean."""
        state = self.state
        names = self.state_names
        key = [state]
        for group in self.param_groups:
            for p in group["params"]:
                s = state.get(p)
                key += (p, p._data, p._node, s)
                if s is not None:
                    for name in names:
                        key.append(s.get(name))
        return key

    def _table(self):
        """The parameter table (see ``kernels/optim.py``), rebuilt when what it points at changed."""
        try:
            key = self._key()
        except AttributeError:  # something that is not a Tensor was put among the parameters
            key = None
        old = self._table_key
        if key is not None and old is not None and len(key) == len(old) and all(map(operator.is_, key, old)):
            return self._int_table
        self._sync_steps()
        entries = [(group, p) for group in self.param_groups for p in group["params"]]
        params = [p for _, p in entries]
        table = np.zeros((len(params), kernel.COLUMNS), np.int64)
        buffers = []
        for k, (group, p) in enumerate(entries):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            state = self.state.setdefault(p, {})
            table[k, kernel.ROW] = p._node._row if isinstance(p._node, AccumulateGrad) else -1  # -1: no .grad
            table[k, kernel.DATA] = p._data.ctypes.data
            fresh = False
            in_use = self._state_in_use(group)
            for column, name in zip((kernel.STATE0, kernel.STATE1, kernel.STATE2), self.state_names):
                if name not in in_use:
                    continue  # address 0: the kernel does not read it for these options
                fresh |= state.get(name) is None
                buffer = state[name] = _state_buffer(type(self).__name__, state.get(name), name, p, k,
                                                     self._initial_value(name))
                table[k, column] = buffer._data.ctypes.data
                buffers.append(buffer._data)
            if self.kind == kernel.SGD:  # SGD's first step is the one that makes the buffer (PyTorch: buf = d)
                table[k, kernel.STEP] = 0 if fresh else 1
            else:
                table[k, kernel.STEP] = int(state.get("step", 0))
        for p in params:
            if not p._data.flags.writeable:
                raise RuntimeError(f"{type(self).__name__}.step: a parameter of shape {list(p.shape)} is read-only "
                                   "memory (from_numpy of a non-writable array); clone() it first")
            if not p._data.flags.c_contiguous:  # the update writes parameters as flat buffers
                raise RuntimeError(f"{type(self).__name__}.step: a parameter of shape {list(p.shape)} is a strided "
                                   f"view (strides {p.stride()}); optimize a contiguous tensor (contiguous(), clone())")
        self._int_table, self._table_key = table, self._key()
        dtypes = {p._data.dtype: None for p in params}  # in order, once each
        self._dtypes = tuple((dtype.type, dtype.itemsize) for dtype in dtypes)
        self._table_states = [self.state[p] for p in params]  # where the step counts go back
        self._steps_written = [s.get("step") for s in self._table_states]
        # every array the table points at, alive as long as the table is used (whatever else changes)
        self._table_arrays = [p._data for p in params] + buffers
        self._table_in_use = self._in_use()
        self._storages = versions.storages([p._data for p in params])
        return table

    def _in_use(self):
        return [self._state_in_use(group) for group in self.param_groups]

    def _hyper(self):
        """The hyper-parameter table, one row per parameter; rebuilt only when a group's values
        (a scheduler's lr, say) or sizes changed."""
        key = [(self._hyper_row(group), len(group["params"])) for group in self.param_groups]
        if key != self._hyper_key:
            for row, _ in key:
                for value in row:
                    if isinstance(value, (str, bytes)) or value is None:
                        raise TypeError(f"{type(self).__name__}.step: a hyper-parameter of a param group is "
                                        f"{value!r}, not a number")
            rows = [row for row, count in key for _ in range(count)]
            hyper = np.zeros((len(rows), kernel.HYPER_COLUMNS))
            hyper[:, list(self.hyper_columns)] = np.array(rows, np.float64).reshape(-1, len(self.hyper_columns))
            self._hyper_table, self._hyper_key = hyper, key
            # an option turned on (RMSprop's momentum, say) reads a buffer the table may not point at yet
            if self._table_key is not None and self._in_use() != self._table_in_use:
                self._table_key = None
        return self._hyper_table

    def step(self, closure=None):
        """Update every parameter that has a gradient, in one compiled call; returns ``closure()``'s loss."""
        loss = closure() if closure is not None else None
        table, hyper = self._prepare_step()
        step = kernel.STEPS[self.kind]
        updated = 0
        for dtype, itemsize in self._dtypes:  # a kernel per dtype: only those in use are compiled
            updated += step(tape.chunk_addresses, table, hyper, dtype, itemsize)
        recorder = recording.active
        if recorder is not None:
            recorder.optimizer_step(self, table, hyper)
        self._finish_step(table, updated)
        if recorder is not None:
            recorder.optimizer_step_done()
        return loss

    def _prepare_step(self):
        """The tables the step kernel reads: ``(table, hyper)`` (``nbgrad.compile``'s replay asks too)."""
        hyper = self._hyper()  # first: it may ask for a new table
        table = self._table()
        if self.counts_steps and [s.get("step") for s in self._table_states] != self._steps_written:
            for k, s in enumerate(self._table_states):
                table[k, kernel.STEP] = int(s.get("step", 0))
        return table, hyper

    def _finish_step(self, table, updated):
        """After the kernel updated ``updated`` parameters: step counts back, versions counted."""
        if self.counts_steps:
            self._sync_steps()
        # a graph that saved a parameter must not see its new values: count a version for those updated
        if updated == len(table):
            versions.bump_storages(*self._storages)
        elif updated:
            entries, starts, ends = self._storages
            mask = table[:, kernel.UPDATED] != 0
            versions.bump_storages([e for e, m in zip(entries, mask.tolist()) if m], starts[mask], ends[mask])

    def _sync_steps(self):
        """Copy the step counts the kernel keeps in the table into the states it was built from."""
        if self._table_key is not None and self.counts_steps:
            self._steps_written = self._int_table[:, kernel.STEP].tolist()
            for state, steps in zip(self._table_states, self._steps_written):
                state["step"] = steps

    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [...]}`` with parameters as indices, as PyTorch."""
        self._sync_steps()
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        state = {index[id(p)]: {k: (v.detach().clone() if isinstance(v, Tensor) else v) for k, v in s.items()}
                 for p, s in self.state.items() if s and id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("loaded state dict has a different number of parameter groups or parameters")
        params = self._params()
        for saved, group in zip(groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {k: (_wrap(np.array(v._data, p._data.dtype, order="C")) if isinstance(v, Tensor) else v)
                             for k, v in s.items()}
        self._table_key = None

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _state_buffer(optimizer, buffer, name, p, k, fill=0):
    """A parameter's state buffer as the step kernel reads it: filled with ``fill`` when there is none
    yet, the parameter's dtype; a buffer of another shape is an error (the kernel would read past it)."""
    if buffer is None:
        return _wrap(np.full(p._data.shape, fill, p._data.dtype))
    if not isinstance(buffer, Tensor):
        raise TypeError(f"{optimizer}.step: state {name!r} of parameter {k} is a {type(buffer).__name__}, "
                        "not a Tensor")
    if buffer._data.shape != p._data.shape:
        raise RuntimeError(f"{optimizer}.step: state {name!r} of parameter {k} has shape {list(buffer.shape)}: "
                           f"the size of tensor a ({buffer.numel()}) must match the size of tensor b "
                           f"({p.numel()}), the parameter's shape {list(p.shape)}")
    data = buffer._data
    if data.dtype != p._data.dtype or not data.flags.writeable or not data.flags.c_contiguous:
        return _wrap(np.array(data, p._data.dtype, order="C"))  # the kernel writes it as a flat buffer
    return buffer


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (and dampening, Nesterov) and weight decay."""

    kind = kernel.SGD
    state_names = ("momentum_buffer",)
    hyper_columns = (kernel.LR, kernel.WEIGHT_DECAY, kernel.MOMENTUM, kernel.DAMPENING, kernel.NESTEROV)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _hyper_row(self, g):
        return (g["lr"], g["weight_decay"], g["momentum"], g["dampening"], float(g["nesterov"]))


class Adam(Optimizer):
    """Adam with PyTorch's bias correction and defaults (L2 weight decay added to the gradient)."""

    kind = kernel.ADAM
    state_names = ("exp_avg", "exp_avg_sq")
    hyper_columns = (kernel.LR, kernel.WEIGHT_DECAY, kernel.BETA1, kernel.BETA2, kernel.EPS, kernel.DECOUPLED)
    counts_steps = True
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _hyper_row(self, g):
        beta1, beta2 = g["betas"]
        return (g["lr"], g["weight_decay"], beta1, beta2, g["eps"], float(self.decoupled))


class AdamW(Adam):
    """Adam with decoupled weight decay (the parameters shrink by lr * weight_decay each step)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def _check_nonnegative(*checks):
    """PyTorch's checks of a constructor's hyper-parameters, in its words: ``(label, value)`` pairs."""
    for label, value in checks:
        if not 0.0 <= value:
            raise ValueError(f"Invalid {label}: {value}")


class RMSprop(Optimizer):
    """RMSprop: the gradient divided by the root of its running mean square (``centered``: of its
    running variance), with optional momentum, weight decay and ``maximize``, as PyTorch.

    >>> opt = RMSprop(model.parameters(), lr=0.01, momentum=0.9, centered=True)
    """

    kind = kernel.RMSPROP
    state_names = ("square_avg", "momentum_buffer", "grad_avg")
    hyper_columns = (kernel.LR, kernel.WEIGHT_DECAY, kernel.MOMENTUM, kernel.ALPHA, kernel.EPS, kernel.CENTERED,
                     kernel.MAXIMIZE)
    counts_steps = True

    # capturable, foreach and differentiable choose how PyTorch runs the step, not its values
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_nonnegative(("learning rate", lr), ("epsilon value", eps), ("momentum value", momentum),
                           ("weight_decay value", weight_decay), ("alpha value", alpha))
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _hyper_row(self, g):
        return (g["lr"], g["weight_decay"], g["momentum"], g["alpha"], g["eps"], g["centered"], g["maximize"])

    def _state_in_use(self, g):
        # PyTorch makes momentum_buffer only with a momentum, grad_avg only when centered
        return ("square_avg",) + ("momentum_buffer",) * (g["momentum"] > 0) + ("grad_avg",) * bool(g["centered"])


class Adagrad(Optimizer):
    """Adagrad: the gradient divided by the root of the sum of its squares, with the learning rate
    ``lr / (1 + (step - 1) lr_decay)``, optional weight decay and ``maximize``, as PyTorch.

    >>> opt = Adagrad(model.parameters(), lr=0.01, initial_accumulator_value=0.1)
    """

    kind = kernel.ADAGRAD
    state_names = ("sum",)
    hyper_columns = (kernel.LR, kernel.WEIGHT_DECAY, kernel.LR_DECAY, kernel.EPS, kernel.MAXIMIZE)
    counts_steps = True

    # foreach, fused and differentiable choose how PyTorch runs the step, not its values
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_nonnegative(("learning rate", lr), ("lr_decay value", lr_decay), ("weight_decay value", weight_decay),
                           ("initial_accumulator_value value", initial_accumulator_value), ("epsilon value", eps))
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, fused=fused))
        if fused and differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        # as PyTorch, the state is made here, so that it shows (and is saved) before the first step
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = {"step": 0, "sum": _wrap(np.full(p._data.shape, initial_accumulator_value,
                                                                 p._data.dtype))}

    def _hyper_row(self, g):
        return (g["lr"], g["weight_decay"], g["lr_decay"], g["eps"], g["maximize"])

    def _initial_value(self, name):
        return self.defaults["initial_accumulator_value"]  # as PyTorch: a group's own value is not read
