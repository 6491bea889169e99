"""One training step (forward + backward) of a two-layer MLP.

loss = ((relu(x @ w1 + b1) @ w2 + b2) ** 2).mean() with x: (batch, hidden), w1:
(hidden, hidden), w2: (hidden, 10); float32, weights require grad, x does not.
The same numpy-generated data is used for both frameworks.
"""

import numpy as np

from ._common import FRAMEWORKS, import_framework

N_OUT = 10


class MLPStep:
    params = [FRAMEWORKS, [(32, 32), (512, 512)]]
    param_names = ["framework", "batch_hidden"]

    def setup(self, framework, batch_hidden):
        fw = import_framework(framework)
        batch, hidden = batch_hidden
        rng = np.random.default_rng(0)

        def param(*shape, scale=1.0):
            data = (rng.standard_normal(shape) * scale).astype(np.float32)
            return fw.tensor(data, dtype=fw.float32, requires_grad=True)

        self.x = fw.tensor(rng.standard_normal((batch, hidden)).astype(np.float32), dtype=fw.float32)
        self.w1 = param(hidden, hidden, scale=hidden**-0.5)
        self.b1 = param(hidden, scale=0.1)
        self.w2 = param(hidden, N_OUT, scale=hidden**-0.5)
        self.b2 = param(N_OUT, scale=0.1)
        self.weights = (self.w1, self.b1, self.w2, self.b2)
        self.fw = fw
        self.time_forward_backward(framework, batch_hidden)  # warm-up (compile / load kernels)

    def time_forward_backward(self, framework, batch_hidden):
        fw = self.fw
        for w in self.weights:
            w.grad = None
        loss = ((fw.relu(self.x @ self.w1 + self.b1) @ self.w2 + self.b2) ** 2).mean()
        loss.backward()


SIZES = {"tiny": (32, 32, 1), "small": (128, 128, 2), "medium": (512, 512, 2)}  # batch, hidden, hidden layers
FEATURES = 64
CLASSES = 10


def _build_model_and_data(fw, size, seed, momentum):
    """The MLP classifier, its fixed float32 data, an SGD optimizer and the loss, for framework ``fw``."""
    batch, hidden, layers = SIZES[size]
    fw.manual_seed(seed)
    widths = [FEATURES] + [hidden] * layers
    modules = []
    for n_in, n_out in zip(widths, widths[1:]):
        modules += [fw.nn.Linear(n_in, n_out), fw.nn.ReLU()]
    model = fw.nn.Sequential(*modules, fw.nn.Linear(widths[-1], CLASSES))
    rng = np.random.default_rng(seed)
    x = fw.tensor(rng.standard_normal((batch, FEATURES)).astype(np.float32))
    y = fw.tensor(rng.integers(0, CLASSES, batch))
    optimizer = fw.optim.SGD(model.parameters(), lr=0.01, momentum=momentum)
    return model, x, y, optimizer, fw.nn.CrossEntropyLoss()


def _step_function(model, optimizer, loss_fn):
    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def build_train_step(fw, size, seed=0, momentum=0.9):
    """A full training step of an MLP classifier (forward, cross-entropy, backward, SGD with
    momentum) on fixed float32 data: returns the step function (it returns the loss)."""
    model, x, y, optimizer, loss_fn = _build_model_and_data(fw, size, seed, momentum)
    step = _step_function(model, optimizer, loss_fn)
    return lambda: step(x, y)


def build_compiled_train_step(size, seed=0, momentum=0.9):
    """``build_train_step`` for nbgrad with the step run through ``nbgrad.compile``: it takes the data as
    arguments (the program's inputs), so that the step replays."""
    import nbgrad

    model, x, y, optimizer, loss_fn = _build_model_and_data(nbgrad, size, seed, momentum)
    compiled = nbgrad.compile(_step_function(model, optimizer, loss_fn))
    return lambda: compiled(x, y)


def build_jax_train_step(size, seed=0, momentum=0.9):
    """The same step in JAX, the whole of it under ``jax.jit`` (raises NotImplementedError, a skip
    for asv, without JAX)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise NotImplementedError(f"jax is not importable: {exc}") from exc
    batch, hidden, layers = SIZES[size]
    rng = np.random.default_rng(seed)
    widths = [FEATURES] + [hidden] * layers + [CLASSES]
    params = []
    for n_in, n_out in zip(widths, widths[1:]):
        bound = n_in ** -0.5
        params.append((jnp.asarray(rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)),
                       jnp.asarray(rng.uniform(-bound, bound, n_out).astype(np.float32))))
    x = jnp.asarray(rng.standard_normal((batch, FEATURES)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, CLASSES, batch))

    def loss_of(params):
        h = x
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w + b)
        w, b = params[-1]
        logits = h @ w + b
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(batch), y])

    @jax.jit
    def step(params, velocity):
        loss, grads = jax.value_and_grad(loss_of)(params)
        if momentum:
            velocity = jax.tree_util.tree_map(lambda v, g: momentum * v + g, velocity, grads)
            grads = velocity
        return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads), velocity, loss

    state = [params, jax.tree_util.tree_map(jnp.zeros_like, params)]

    def run():
        state[0], state[1], loss = step(state[0], state[1])
        return loss.block_until_ready()

    return run


def _train_step(framework, size, momentum=0.9):
    if framework == "nbgrad.compile":
        return build_compiled_train_step(size, momentum=momentum)
    if framework == "jax.jit":
        return build_jax_train_step(size, momentum=momentum)
    return build_train_step(import_framework(framework), size, momentum=momentum)


class MLPTrainStep:
    """One full training step: forward, cross-entropy, backward and an SGD-momentum update.

    tiny: batch 32, hidden 32, one hidden layer; small: 128, 128, two; medium: 512, 512, two.
    """

    params = [FRAMEWORKS + ["nbgrad.compile", "jax.jit"], list(SIZES)]
    param_names = ["framework", "size"]

    def setup(self, framework, size):
        self.step = _train_step(framework, size)
        for _ in range(3):  # warm-up (compile / load kernels, allocate optimizer state; nbgrad.compile captures)
            self.step()

    def time_train_step(self, framework, size):
        self.step()



class MLPTrainMemory:
    """Peak memory over 100 medium training steps."""

    params = [FRAMEWORKS]
    param_names = ["framework"]

    def setup(self, framework):
        self.step = build_train_step(import_framework(framework), "medium")
        self.step()

    def peakmem_100_steps(self, framework):
        for _ in range(100):
            self.step()
