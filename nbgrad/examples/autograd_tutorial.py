"""The autograd tutorial, step by step: ``python -m nbgrad.examples.autograd_tutorial``.

It follows PyTorch's classic "Autograd: automatic differentiation" tutorial
with ``import nbgrad as torch`` and prints each step, so you can see the graph
that autograd records and what ``backward()`` does with it.
"""
import argparse

import nbgrad as torch


def section(title):
    print(f"\n=== {title}")


def show(label, value):
    text = repr(value)
    print(f"{label}:" + ("\n" + text if "\n" in text else " " + text))


def describe_graph(tensor, depth=0):
    """Print the backward graph below ``tensor.grad_fn``, one node per line."""
    def walk(node, depth):
        name = type(node).__name__
        extra = f" -> leaf of shape {tuple(node.variable.shape)}" if name == "AccumulateGrad" else ""
        print("    " + "  " * depth + name + extra)
        for child, _ in node.next_functions:
            if child is not None:
                walk(child, depth + 1)

    walk(tensor.grad_fn, depth)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed for randn (default 0)")
    parser.add_argument("--graph", metavar="PATH", help="also draw step 9's graph to PATH (.svg or .png; "
                        "needs pip install graphviz)")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)

    section("1. Tracking: requires_grad=True records every operation on x")
    x = torch.ones(2, 2, requires_grad=True)
    show("x", x)
    y = x + 2
    show("y = x + 2", y)
    show("y.grad_fn (the node that made y)", y.grad_fn)
    show("x.grad_fn (x was made by the user: a leaf)", x.grad_fn)

    section("2. More operations, and the graph they build")
    z = y * y * 3
    out = z.mean()
    show("z = y * y * 3", z)
    show("out = z.mean()", out)
    print("out's graph (each node's next_functions are its inputs' nodes):")
    describe_graph(out)
    show("out.grad_fn.next_functions", out.grad_fn.next_functions)

    section("3. requires_grad_() switches tracking on in place")
    a = torch.randn(2, 2)
    a = (a * 3) / (a - 1)
    show("a.requires_grad", a.requires_grad)
    a.requires_grad_(True)
    show("after a.requires_grad_(True)", a.requires_grad)
    b = (a * a).sum()
    show("b.grad_fn", b.grad_fn)

    section("4. Gradients: out.backward() is out.backward(torch.tensor(1.))")
    out.backward()
    show("d(out)/dx = x.grad (3 * 2 * (x + 2) / 4 = 4.5)", x.grad)

    section("5. Gradients accumulate: a second graph adds to x.grad")
    (x * 2).sum().backward()
    show("x.grad after backward of (x * 2).sum()", x.grad)
    x.grad = None
    show("x.grad after x.grad = None", x.grad)

    section("6. Vector-Jacobian product: backward(v) on a non-scalar output")
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    show("y", y)
    try:
        y.backward()
    except RuntimeError as error:
        print(f"y.backward() without a gradient: RuntimeError: {error}")
    v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
    y.backward(v)
    show("x.grad = v^T J", x.grad)

    section("7. Stop tracking: no_grad() and detach()")
    show("x.requires_grad", x.requires_grad)
    show("(x ** 2).requires_grad", (x ** 2).requires_grad)
    with torch.no_grad():
        show("(x ** 2).requires_grad inside no_grad()", (x ** 2).requires_grad)
    y = x.detach()
    show("y = x.detach(); y.requires_grad", y.requires_grad)
    show("x.eq(y).all() (same values, shared storage)", x.eq(y).all())

    section("8. The graph is freed after backward")
    w = torch.ones(2, requires_grad=True)
    loss = (w.exp() * 3).sum()
    loss.backward()
    try:
        loss.backward()
    except RuntimeError as error:
        print(f"second backward: RuntimeError: {str(error)[:75]}...")
    print("(pass retain_graph=True to the first backward to walk the graph twice)")

    section("9. A picture of the graph: torch.autograd.graph.to_dot")
    x = torch.ones(2, 2, requires_grad=True)
    out = ((x + 2) * (x + 2) * 3).mean()
    print(torch.autograd.graph.to_dot(out), end="")
    if args.graph:
        print(f"drawn to {torch.autograd.graph.render(out, args.graph)}")
    else:
        print("(paste it into any Graphviz viewer, or run with --graph graph.svg)")


if __name__ == "__main__":
    main()
