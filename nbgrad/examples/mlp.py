"""Train a small MLP on the bundled 8x8 handwritten digits.

    python -m nbgrad.examples.mlp [--epochs 20] [--hidden 64] [--optimizer adam] [--plot curves.png]
    mpiexec -n 2 python -m nbgrad.examples.mlp --distributed

One line per epoch (loss, train and test accuracy, seconds); the last line is the
test accuracy. The same seed gives the same numbers. With --distributed, each MPI rank
computes the gradient of its share of every batch and DistributedDataParallel averages
them: the training is that of one process, and only rank 0 prints.
"""
import argparse
import importlib.util
import math
import os
import sys
import time

import nbgrad
from nbgrad import nn, optim
from nbgrad.examples.data import load_digits
from nbgrad.utils.data import DataLoader, TensorDataset

CLASSES = 10


def _positive_float(text):
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each default, but not the None of a flag that has none."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nbgrad.examples.mlp", description=__doc__.split("\n")[0],
                                     formatter_class=_ShowDefaults)
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step")
    parser.add_argument("--hidden", type=int, default=64, help="width of each hidden layer")
    parser.add_argument("--layers", type=int, default=1, help="number of hidden layers (0: a linear model)")
    parser.add_argument("--lr", type=_positive_float, default=None,
                        help="learning rate (default: 0.01 with adam, 0.1 with sgd)")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="adam", help="sgd has momentum 0.9")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the split and the batches")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="of weights and data")
    parser.add_argument("--plot", metavar="PATH", help="write loss and accuracy curves to this PNG (needs matplotlib)")
    parser.add_argument("--save", metavar="PATH", help="save the trained model's state_dict (.npz)")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the MPI ranks (run under mpiexec; needs mpi4py)")
    parser.add_argument("--compile", action="store_true", help="run the training step through nbgrad.compile")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "hidden"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.layers < 0:
        parser.error("--layers must be at least 0")
    for flag in ("plot", "save"):  # checked now, not after the training they would save
        path = getattr(args, flag)
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if path and not os.path.isdir(folder):
            parser.error(f"--{flag} {path}: the folder {folder} does not exist")
        if path and not os.access(folder, os.W_OK):
            parser.error(f"--{flag} {path}: the folder {folder} is not writable")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error('--plot needs matplotlib: pip install -e ".[plot]" from a clone (or pip install matplotlib)')
    if args.distributed and importlib.util.find_spec("mpi4py") is None:
        parser.error('--distributed needs mpi4py: pip install -e ".[distributed]" from a clone '
                     '(or pip install mpi4py mpich)')
    return args


def start_distributed():
    """``(world size, rank)``: MPI's when the process group is up (started here if need be)."""
    import nbgrad.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="mpi")
    return dist.get_world_size(), dist.get_rank()


def describe_model(layers, hidden):
    if layers == 0:
        return "linear (no hidden layer)"
    return f"{layers} hidden layer{'s' if layers > 1 else ''} of {hidden}"


def build_model(features, hidden, layers):
    widths = [features] + [hidden] * layers
    modules = []
    for n_in, n_out in zip(widths, widths[1:]):
        modules += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*modules, nn.Linear(widths[-1], CLASSES))


def accuracy(model, x, y):
    with nbgrad.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def _progress(done, total, out=sys.stderr):
    """A one-line bar for epochs long enough to watch."""
    width = 30
    filled = width * done // total
    out.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        out.write("\r" + " " * (width + 20) + "\r")
    out.flush()


def train(args, log=print):
    world, rank = start_distributed() if args.distributed else (1, 0)
    nbgrad.manual_seed(args.seed)
    dtype = getattr(nbgrad, args.dtype)
    x_train, y_train, x_test, y_test = load_digits(dtype=dtype, seed=args.seed)
    model = build_model(x_train.shape[1], args.hidden, args.layers).to(dtype)
    if args.distributed:
        from nbgrad.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model)
    lr = args.lr if args.lr is not None else (0.01 if args.optimizer == "adam" else 0.1)
    optimizer = optim.Adam(model.parameters(), lr=lr) if args.optimizer == "adam" else optim.SGD(
        model.parameters(), lr=lr, momentum=0.9)
    schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)  # settles at the end
    loss_fn = nn.CrossEntropyLoss(reduction="sum")  # divided by the whole batch's size below
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                        generator=args.seed)
    show_bar = rank == 0 and len(loader) >= 200 and sys.stderr.isatty()
    history = {"loss": [], "train": [], "test": []}
    log(f"digits: {len(x_train)} train, {len(x_test)} test images; model: {describe_model(args.layers, args.hidden)}, "
        f"{args.optimizer} lr {lr} (cosine schedule), batch {args.batch_size}, {args.dtype}"
        + (f", {world} ranks" if args.distributed else ""))

    def step(xb, yb, batch):
        optimizer.zero_grad()
        # The share's summed loss over the batch's size, times the world size: the average
        # over ranks that DistributedDataParallel takes is then the whole batch's mean loss.
        loss = loss_fn(model(xb), yb) * (world / batch)
        loss.backward()
        optimizer.step()
        return loss

    if getattr(args, "compile", False):
        step = nbgrad.compile(step)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        total, count = 0.0, 0
        for i, (xb, yb) in enumerate(loader, 1):  # the same batches in every rank (the same seed)
            share = slice(rank * len(yb) // world, (rank + 1) * len(yb) // world)
            loss = step(xb[share], yb[share], len(yb))
            total += loss.item() * len(yb) / world
            count += len(yb)
            if show_bar and (i % 20 == 0 or i == len(loader)):
                _progress(i, len(loader))
        schedule.step()
        if world > 1:  # the ranks' shares of the epoch's loss
            total = _sum_over_ranks(total)
        history["loss"].append(total / count)
        history["train"].append(accuracy(model, x_train, y_train))
        history["test"].append(accuracy(model, x_test, y_test))
        log(f"epoch {epoch:3d}  loss {history['loss'][-1]:.4f}  train acc {history['train'][-1]:.4f}  "
            f"test acc {history['test'][-1]:.4f}  {time.perf_counter() - start:.2f} s")
    return model, history


def _sum_over_ranks(value):
    import nbgrad.distributed as dist

    summed = nbgrad.tensor([value], dtype=nbgrad.float64)
    dist.all_reduce(summed)
    return summed.item()


def plot(history, path, log=print):
    import matplotlib  # parse_args checked that it is installed

    matplotlib.use("Agg")
    from matplotlib import pyplot

    epochs = range(1, len(history["loss"]) + 1)
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history["loss"])
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    right.plot(epochs, history["train"], label="train")
    right.plot(epochs, history["test"], label="test")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    right.legend()
    figure.tight_layout()
    figure.savefig(path)
    log(f"curves written to {path}")


def main(argv=None):
    args = parse_args(argv)
    rank = start_distributed()[1] if args.distributed else 0
    log = print if rank == 0 else (lambda *_: None)
    model, history = train(args, log)
    if args.distributed:
        model = model.module  # the wrapped model: its state_dict has no "module." prefix
    if args.plot and rank == 0:
        plot(history, args.plot, log)
    if args.save and rank == 0:
        nbgrad.save(model.state_dict(), args.save)
        log(f"model saved to {args.save}")
    log(f"test accuracy {history['test'][-1]:.4f}")
    return history


if __name__ == "__main__":
    main()
