"""The autograd-core command on a tiny synthetic Fashion-MNIST written as IDX files."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import autograd_core
from nn import checkpoint, data
from nn.apps import cli, models, trainer

try:
    import matplotlib  # noqa: F401  (an optional extra: the plots are checked where it is installed)
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

TRAIN_COUNT = 200
TEST_COUNT = 100
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _synthetic_split(count, seed):
    """Images whose class is a bright band of rows (class c: rows 2c..2c+5) over noise,
    so that a linear model can learn them within a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
    for index, label in enumerate(labels):
        images[index, 2 * label: 2 * label + 6, :] = 220
    return images, labels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fashion-mnist")
    for split, count, seed in (("train", TRAIN_COUNT, 0), ("test", TEST_COUNT, 1)):
        images, labels = _synthetic_split(count, seed)
        images_name, labels_name = data.FASHION_MNIST_FILES[split]
        data.write_idx(directory / (images_name + ".gz"), images)
        data.write_idx(directory / labels_name, labels)  # raw: both forms are accepted
    return str(directory)


def _run(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _train(capsys, data_dir, out, model="softmax", *extra):
    return _run(capsys, "train", model, "--epochs", 1, "--batch-size", 20, "--lr", 0.01, "--seed", 0,
                "--data-dir", data_dir, "--out", out, "--no-download", "--no-progress", *extra)


def _evaluate_accuracy(capsys, data_dir, checkpoint_path, *extra):
    status, out, err = _run(capsys, "evaluate", "--checkpoint", checkpoint_path, "--data-dir", data_dir,
                            "--no-download", *extra)
    assert status == 0, err
    return float(out.split("test accuracy ")[1].split(",")[0]), out


def test_train_softmax_then_evaluate(capsys, data_dir, tmp_path):
    out_dir = tmp_path / "run"
    status, out, err = _train(capsys, data_dir, out_dir)
    assert status == 0, err
    assert "epoch 1/1: train loss" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["model"] == "softmax" and metrics["task"] == "classification"
    assert metrics["config"]["batch_size"] == 20 and metrics["config"]["lr"] == 0.01
    (epoch,) = metrics["epochs"]
    assert epoch["epoch"] == 1 and np.isfinite(epoch["train_loss"])
    # the synthetic classes are linearly separable: well above chance (0.1) after 10 steps
    assert epoch["test_accuracy"] > 0.5
    if HAVE_MATPLOTLIB:
        assert (out_dir / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in out and not (out_dir / "curve.png").exists()
    metadata = checkpoint.read_metadata(out_dir / "checkpoint.npz")
    assert metadata["model"] == "softmax" and metadata["epoch"] == 1
    accuracy, report = _evaluate_accuracy(capsys, data_dir, out_dir / "checkpoint.npz")
    assert accuracy == pytest.approx(epoch["test_accuracy"], abs=1e-4)
    assert f"on {TEST_COUNT} test images" in report
    accuracy_on_half, report = _evaluate_accuracy(capsys, data_dir, out_dir / "checkpoint.npz",
                                                  "--limit-test", 50, "--batch-size", 7)
    assert "on 50 test images" in report and 0.0 <= accuracy_on_half <= 1.0


def test_train_cnn_one_epoch_then_evaluate(capsys, data_dir, tmp_path):
    out_dir = tmp_path / "cnn"
    status, out, err = _train(capsys, data_dir, out_dir, "cnn", "--lr", 0.003,
                              "--limit-train", 60, "--limit-test", 40, "--threads", 1)
    assert status == 0, err
    metrics = json.loads((out_dir / "metrics.json").read_text())
    (epoch,) = metrics["epochs"]
    assert np.isfinite(epoch["train_loss"]) and 0.0 <= epoch["test_accuracy"] <= 1.0
    arrays = checkpoint.load(out_dir / "checkpoint.npz")
    shapes = {key: value.shape for key, value in arrays.items() if key.startswith("model/")}
    assert (5, 5, 32, 64) in shapes.values()
    assert any(key.startswith("optim/state.") for key in arrays)  # Adam moments are saved
    accuracy, _ = _evaluate_accuracy(capsys, data_dir, out_dir / "checkpoint.npz", "--limit-test", 40)
    assert accuracy == pytest.approx(epoch["test_accuracy"], abs=1e-4)


def test_resume_continues_exactly_where_training_stopped(capsys, data_dir, tmp_path):
    straight, first, resumed = tmp_path / "straight", tmp_path / "first", tmp_path / "resumed"
    assert _train(capsys, data_dir, straight, "softmax", "--epochs", 2)[0] == 0
    assert _train(capsys, data_dir, first, "softmax", "--epochs", 1)[0] == 0
    status, out, err = _train(capsys, data_dir, resumed, "softmax", "--epochs", 2,
                              "--resume", first / "checkpoint.npz")
    assert status == 0, err
    assert "resumed from" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    expected, got = checkpoint.load(straight / "checkpoint.npz"), checkpoint.load(resumed / "checkpoint.npz")
    weights = [key for key in expected if key.startswith(("model/", "optim/"))]
    assert weights and sorted(weights) == sorted(k for k in got if k.startswith(("model/", "optim/")))
    for key in weights:  # same shuffling order, same Adam state: identical results
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-7, err_msg=key)
    history = json.loads((resumed / "metrics.json").read_text())["epochs"]
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert float(got["optim/group.0.lr"]) == 0.01
    # an explicit --lr replaces the checkpoint's learning rate
    assert _train(capsys, data_dir, tmp_path / "faster", "softmax", "--epochs", 2, "--lr", 0.5,
                  "--resume", first / "checkpoint.npz")[0] == 0
    assert float(checkpoint.load(tmp_path / "faster" / "checkpoint.npz")["optim/group.0.lr"]) == 0.5


def test_resume_refuses_another_models_checkpoint(capsys, data_dir, tmp_path):
    assert _train(capsys, data_dir, tmp_path / "softmax")[0] == 0
    status, _, err = _train(capsys, data_dir, tmp_path / "mlp", "mlp",
                            "--resume", tmp_path / "softmax" / "checkpoint.npz")
    assert status == 1
    assert "checkpoint is of model 'softmax', not 'mlp'" in err
    status, _, err = _train(capsys, data_dir, tmp_path / "again", "softmax", "--epochs", 1,
                            "--resume", tmp_path / "softmax" / "checkpoint.npz")
    assert status == 1 and "already has 1 epoch(s)" in err


def test_missing_matplotlib_prints_one_notice(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    status, out, err = _train(capsys, data_dir, tmp_path / "run", "softmax", "--epochs", 2)
    assert status == 0, err
    assert out.count("skipped the training-curve plot") == 1
    assert not (tmp_path / "run" / "curve.png").exists()


def test_progress_falls_back_to_plain_lines_without_tqdm(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "_tqdm", None)
    status, out, err = _run(capsys, "train", "softmax", "--epochs", 1, "--batch-size", 20, "--data-dir",
                            data_dir, "--out", tmp_path / "run", "--no-download")
    assert status == 0, err
    batch_lines = [line for line in out.splitlines() if ": batch " in line]
    assert len(batch_lines) == 10  # 200 images / 20 per batch, one line per batch here
    assert batch_lines[-1].startswith("epoch 1/1: batch 10/10, loss ")


@pytest.mark.skipif(trainer._tqdm is None, reason="tqdm not installed")
def test_tqdm_progress_shows_the_running_loss(capsys, data_dir, tmp_path):
    status, _, err = _run(capsys, "train", "softmax", "--epochs", 1, "--batch-size", 20, "--data-dir",
                          data_dir, "--out", tmp_path / "run", "--no-download")
    assert status == 0
    assert "epoch 1/1" in err and "loss=" in err


def test_threads_option_sets_the_kernel_thread_count(capsys, data_dir, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(autograd_core, "set_num_threads", calls.append)
    assert _train(capsys, data_dir, tmp_path / "run", "softmax", "--threads", 3)[0] == 0
    assert calls == [3]


@pytest.mark.parametrize("command", [["train", "softmax"], ["train-lm"], ["evaluate"]])
@pytest.mark.parametrize("bad", ["0", "-1", "257", "100000", "2147483648", "two"])
def test_threads_out_of_range_are_refused_before_anything_runs(capsys, command, bad):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(command + ["--threads", bad])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--threads: got {bad!r}, expected an integer from 1 to 256" in err


def test_errors_are_one_clear_line(capsys, data_dir, tmp_path):
    status, _, err = _train(capsys, data_dir, tmp_path / "run", "no-such-model")
    assert status == 1 and "unknown model 'no-such-model'" in err and "softmax" in err
    status, _, err = _train(capsys, tmp_path / "empty", tmp_path / "run")
    assert status == 1 and "lacks" in err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a checkpoint")
    status, _, err = _run(capsys, "evaluate", "--checkpoint", junk, "--data-dir", data_dir)
    assert status == 1 and "not an .npz archive" in err
    plain = tmp_path / "plain.npz"
    checkpoint.save(plain, {"w": np.zeros(2)})
    status, _, err = _run(capsys, "evaluate", "--checkpoint", plain, "--data-dir", data_dir)
    assert status == 1 and "no model name" in err
    with pytest.raises(SystemExit):
        cli.main(["train", "softmax", "--epochs", "0"])
    capsys.readouterr()


def test_models_command_lists_the_lecture_models(capsys):
    status, out, _ = _run(capsys, "models")
    assert status == 0
    for name in ("softmax", "mlp", "mlp-relu", "cnn"):
        assert any(line.split()[0] == name for line in out.splitlines()), name


def test_python_dash_m_nn_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "nn", "train", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for option in ("--epochs", "--batch-size", "--lr", "--seed", "--threads", "--data-dir", "--out",
                   "--limit-train", "--limit-test"):
        assert option in result.stdout


# -- the registry -------------------------------------------------------------------------


def test_lecture_models_have_the_lecture_shapes():
    import nn

    shapes = {name: [tuple(p.shape) for p in models.build_model(name).parameters()]
              for name in ("softmax", "mlp", "mlp-relu", "cnn")}
    assert shapes["softmax"] == [(10, 784), (10,)]
    mlp_weights = [shape for shape in shapes["mlp"] if len(shape) == 2]
    assert mlp_weights == [(200, 784), (100, 200), (60, 100), (30, 60), (10, 30)]
    assert shapes["mlp-relu"] == shapes["mlp"]
    assert [s for s in shapes["cnn"] if len(s) != 1] == [(5, 5, 1, 32), (5, 5, 32, 64), (1024, 3136), (10, 1024)]
    relu = models.build_model("mlp-relu")
    assert sum(isinstance(m, nn.Dropout) for m in relu.modules()) == 4
    assert sum(isinstance(m, nn.ReLU) for m in relu.modules()) == 4
    cnn = models.build_model("cnn")
    assert [m.p for m in cnn.modules() if isinstance(m, nn.Dropout)] == [0.4]
    logits = cnn.eval()(autograd_core.from_numpy(np.zeros((2, 28, 28, 1), np.float32)))
    assert logits.shape == (2, 10)
    spec = models.get_model_spec("cnn")
    assert spec.training["optimizer"] == "adam" and spec.training["lr"] == 0.003
    assert spec.training["batch_size"] == 100


def test_he_init_scale_for_relu_models():
    models.init.manual_seed(0)
    first = next(iter(models.build_model("mlp-relu").parameters())).data
    # He normal: std sqrt(2 / fan_in) = sqrt(2 / 784)
    assert first.std() == pytest.approx(np.sqrt(2 / 784), rel=0.05)


def test_registered_model_and_task_are_usable_from_the_cli(capsys, data_dir, tmp_path, monkeypatch):
    import nn

    monkeypatch.setattr(models, "_MODELS", dict(models._MODELS))
    monkeypatch.setattr(models, "_TASKS", dict(models._TASKS))
    evaluated = []

    def loss(model, images, labels):
        return nn.functional.mse_loss(model(images), images.reshape(images.shape[0], -1))

    def evaluate(model, loader):
        evaluated.append(model.training)
        errors = [float(nn.functional.mse_loss(model(autograd_core.from_numpy(x)),
                                               autograd_core.from_numpy(x.reshape(len(x), -1))).data)
                  for x, _ in loader]
        return {"mse": float(np.mean(errors))}

    drawn = []

    def pictures(model, images, labels, directory, name):
        drawn.append((len(images), len(labels), name))
        path = os.path.join(directory, "pictures.txt")
        with open(path, "w") as stream:
            stream.write("drawn")
        return [path]

    models.register_task(models.Task("toy-reconstruction", loss, evaluate, metric="mse", higher_is_better=False,
                                     pictures=pictures))
    models.register_model("tiny-autoencoder",
                          lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 784)),
                          task="toy-reconstruction", defaults={"epochs": 2, "lr": 0.01})
    assert "tiny-autoencoder" in models.available_models()
    status, out, err = _run(capsys, "train", "tiny-autoencoder", "--data-dir", data_dir, "--out",
                            tmp_path / "ae", "--no-progress", "--batch-size", 50)
    assert status == 0, err
    assert "epoch 2/2" in out and "test mse" in out
    assert evaluated == [False, False]  # evaluation runs in eval mode
    history = json.loads((tmp_path / "ae" / "metrics.json").read_text())["epochs"]
    assert history[1]["train_loss"] < history[0]["train_loss"]
    if HAVE_MATPLOTLIB:  # the CLI draws a task's pictures only where it can plot
        assert drawn == [(TEST_COUNT, TEST_COUNT, "tiny-autoencoder")]
        assert "pictures.txt" in out and (tmp_path / "ae" / "pictures.txt").exists()
    # without matplotlib: neither curve nor pictures, and a single notice naming both
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = _run(capsys, "train", "tiny-autoencoder", "--data-dir", data_dir, "--out",
                            tmp_path / "ae2", "--no-progress", "--batch-size", 50, "--epochs", 1)
    assert status == 0, err
    assert len(drawn) == (1 if HAVE_MATPLOTLIB else 0)  # not called again
    notices = [line for line in out.splitlines() if "matplotlib is not installed" in line]
    assert len(notices) == 1 and "pictures" in notices[0]


def test_registry_rejects_mistakes():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        models.register_model("x", lambda: None, task="nope")
    with pytest.raises(ValueError, match=r"unknown default\(s\) \['learning_rate'\]"):
        models.register_model("x", lambda: None, defaults={"learning_rate": 0.1})
    with pytest.raises(TypeError, match="callable"):
        models.register_model("x", None)
    with pytest.raises(ValueError, match="unknown model 'x'"):
        models.get_model_spec("x")


def test_console_script_points_at_main():
    from importlib.metadata import EntryPoint, entry_points

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as stream:
        declared = tomllib.load(stream)["project"]["scripts"]["autograd-core"]
    assert declared == "nn.apps.cli:main"
    assert EntryPoint("autograd-core", declared, "console_scripts").load() is cli.main
    # an installed copy's script (its metadata may predate the move) reaches the same main
    for script in entry_points(group="console_scripts", name="autograd-core"):
        assert script.load() is cli.main


def test_step_schedule_sets_the_learning_rate_per_epoch(capsys, data_dir, tmp_path):
    out_dir = tmp_path / "run"
    status, out, err = _run(capsys, "train", "softmax", "--epochs", 3, "--batch-size", 50, "--lr", 0.01,
                            "--lr-step-size", 2, "--lr-gamma", 0.1, "--data-dir", data_dir, "--out", out_dir,
                            "--no-download", "--no-progress")
    assert status == 0, err
    assert "lr 0.01 (x0.1 every 2 epochs)" in out
    metadata = checkpoint.read_metadata(out_dir / "checkpoint.npz")
    assert metadata["config"]["lr_step_size"] == 2 and metadata["config"]["lr_gamma"] == 0.1
    state = checkpoint.load(out_dir / "checkpoint.npz")
    learning_rates = [value for key, value in state.items() if key.startswith("optim/") and key.endswith("lr")]
    # epochs 1-2 at 0.01, epoch 3 at 0.001: the optimizer was saved after epoch 3
    assert learning_rates and all(float(v) == pytest.approx(0.001) for v in learning_rates)


# -- old module names (the import layering itself: tests/test_architecture.py) -------------------


def test_old_module_names_are_the_moved_modules():
    import importlib

    import nn
    import nn.apps.ae_tasks
    import nn.apps.sequence_tasks
    import nn.apps.text

    assert nn.models is models and nn.cli is cli
    for old, new in (("nn.text", nn.apps.text), ("nn.ae_tasks", nn.apps.ae_tasks),
                     ("nn.sequence_tasks", nn.apps.sequence_tasks), ("nn.models", models), ("nn.cli", cli)):
        assert importlib.import_module(old) is new
    from nn.sequence_tasks import run_time_series
    assert run_time_series is nn.apps.sequence_tasks.run_time_series
    with pytest.raises(AttributeError, match="no_such_module"):
        nn.no_such_module  # noqa: B018
    # `python -m` of an old name runs the moved module as the script
    result = subprocess.run([sys.executable, "-m", "nn.text", "sample", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "--temperature" in result.stdout and "python -m nn.apps.text" in result.stdout


def test_evaluate_pictures_needs_a_task_that_draws(capsys, data_dir, tmp_path):
    assert _train(capsys, data_dir, tmp_path / "run")[0] == 0
    status, _, err = _run(capsys, "evaluate", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--data-dir",
                          data_dir, "--pictures")
    assert status == 1 and "softmax is a classification model, which draws no pictures" in err


# -- the trainer ------------------------------------------------------------------------------


def _line_trainer(**options):
    """A Trainer fitting y = 2x with one weight; each epoch is two batches x = [1, 2, 3]."""
    import nn

    model = nn.Module()
    model.weight = nn.Parameter(np.zeros(1))
    x = np.array([1.0, 2.0, 3.0])

    def loss(batch):
        error = model.weight * autograd_core.tensor(batch) - autograd_core.tensor(2 * batch)
        return (error * error).mean(), len(batch)

    optimizer = nn.optim.SGD(model.parameters(), lr=0.05)
    return trainer.Trainer(model, optimizer, loss, **options), (lambda epoch: [x, x])


def test_trainer_runs_epochs_schedules_and_stops():
    fitter, batches = _line_trainer()
    results = list(fitter.fit(batches, epochs=3))
    assert [r.epoch for r in results] == [1, 2, 3] and fitter.steps == 6
    assert results[-1].train_loss < results[0].train_loss
    assert abs(float(fitter.model.weight.data[0]) - 2) < 0.1

    fitter, batches = _line_trainer()
    values = []
    results = list(fitter.fit(batches, epochs=4, first_epoch=2, learning_rate=lambda epoch: 0.01 * epoch,
                              after_step=values.append))
    assert [r.epoch for r in results] == [2, 3, 4] and len(values) == 6
    assert fitter.optimizer.param_groups[0]["lr"] == pytest.approx(0.04)

    # without an end, stop() ends training: after the third update, epoch 2 is cut short
    fitter, batches = _line_trainer()
    results = list(fitter.fit(batches, stop=lambda: fitter.steps >= 3))
    assert [r.epoch for r in results] == [1] and fitter.steps == 3


def test_trainer_clips_and_refuses_a_non_finite_loss():
    fitter, batches = _line_trainer(clip_grad_norm=1e-3)
    next(fitter.fit(batches, epochs=1))
    # two steps of at most 0.05 * 1e-3 each
    assert 0 < float(fitter.model.weight.data[0]) <= 1e-4 + 1e-12
    fitter, _ = _line_trainer(name="training line")
    with pytest.raises(FloatingPointError, match=r"training line: loss became nan at step 1 \(epoch 1\)"):
        list(fitter.fit(lambda epoch: [np.array([np.nan])], epochs=1))


def test_trainer_stops_before_the_update_that_a_bad_loss_would_make():
    # the third batch is non-finite: training stops there, at step 3, and the weights stay
    # those after step 2 (no update from a NaN gradient)
    x = np.array([1.0, 2.0, 3.0])
    fitter, _ = _line_trainer(name="line")
    with pytest.raises(trainer.TrainingDiverged, match=r"line: loss became nan at step 3 \(epoch 1\)"):
        list(fitter.fit(lambda epoch: [x, x, np.array([np.inf]), x], epochs=1))
    assert fitter.steps == 2 and np.isfinite(fitter.model.weight.data).all()
    reference, _ = _line_trainer()
    list(reference.fit(lambda epoch: [x, x], epochs=1))
    np.testing.assert_array_equal(fitter.model.weight.data, reference.model.weight.data)

    # a finite loss 10^4 times the first one is divergence too (the saturated softmax of a
    # learning rate of 1e10 keeps the loss finite for ever); the bound is the Trainer's
    fitter, _ = _line_trainer(name="line")
    with pytest.raises(trainer.TrainingDiverged, match=r"step 2 \(epoch 1\), more than 10000 times the first"):
        list(fitter.fit(lambda epoch: [x, 1e4 * x], epochs=1))
    fitter, _ = _line_trainer(divergence_factor=None)
    list(fitter.fit(lambda epoch: [x, 1e4 * x], epochs=1))
    assert fitter.steps == 2
