"""The bundled MLP example, end to end with few epochs, and its argument checks."""
import importlib.util

import pytest

import nbgrad as nb
from nbgrad.examples import mlp

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def test_example_learns_and_is_deterministic(tmp_path, capsys):
    argv = ["--epochs", "2", "--seed", "1", "--save", str(tmp_path / "model.npz")]
    if HAS_MATPLOTLIB:
        argv += ["--plot", str(tmp_path / "c.png")]
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


@pytest.mark.parametrize("argv, says", [
    (["--lr", "-1"], "--lr: must be a positive number"), (["--lr", "nan"], "--lr: must be a positive number"),
    (["--lr", "0"], "--lr: must be a positive number"), (["--epochs", "0"], "--epochs must be at least 1"),
    (["--layers", "-1"], "--layers must be at least 0"), (["--save", "/no/such/folder/m.npz"], "does not exist"),
    (["--plot", "/no/such/folder/c.png"], "does not exist")])
def test_bad_arguments_stop_before_training(argv, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        mlp.parse_args(argv)
    assert stopped.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.skipif(HAS_MATPLOTLIB, reason="matplotlib is installed")
def test_plot_without_matplotlib_says_how_to_install(tmp_path, capsys):
    with pytest.raises(SystemExit):
        mlp.parse_args(["--plot", str(tmp_path / "c.png")])
    assert 'pip install -e ".[plot]"' in capsys.readouterr().err


def test_help_shows_the_defaults_and_the_header_the_model(capsys):
    with pytest.raises(SystemExit):
        mlp.parse_args(["--help"])
    shown = capsys.readouterr().out
    assert "(default: 20)" in shown and "(default: adam)" in shown and "0.01 with adam" in shown
    assert mlp.describe_model(0, 64) == "linear (no hidden layer)"
    assert mlp.describe_model(1, 64) == "1 hidden layer of 64" and mlp.describe_model(2, 8) == "2 hidden layers of 8"
