"""The bundled MLP example, end to end with few epochs."""
import nbgrad as nb
from nbgrad.examples import mlp


def test_example_learns_and_is_deterministic(tmp_path, capsys):
    argv = ["--epochs", "2", "--seed", "1", "--save", str(tmp_path / "model.npz"), "--plot", str(tmp_path / "c.png")]
    history = mlp.main(argv)
    out = capsys.readouterr().out
    assert history["test"][-1] > 0.8  # chance is 0.1
    assert out.count("epoch ") == 2 and "test accuracy" in out.splitlines()[-1]
    assert mlp.main(argv)["loss"] == history["loss"]
    state = nb.load(tmp_path / "model.npz")
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_example_float64_and_sgd():
    history = mlp.main(["--epochs", "3", "--dtype", "float64", "--optimizer", "sgd", "--layers", "2",
                        "--hidden", "16", "--batch-size", "64"])
    assert history["test"][-1] > 0.7
