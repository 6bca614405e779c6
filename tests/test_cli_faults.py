"""Faults a careful user meets on the command line: every check that can run before the
first step runs there (no work lost to a late check), a diverged run stops and keeps its
last good checkpoint, and every user-caused failure is one line ``autograd-core: error:``
with exit status 1, never a traceback."""
import json
import os

import numpy as np
import pytest

from nn import checkpoint
from nn.apps import arguments, cli, text

from test_cli import TRAIN_COUNT, data_dir  # noqa: F401  (the tiny IDX fixture)

CORPUS = "the cat sat on the mat and the dog sat on the log. " * 20
LM_SMALL = ["--max-steps", "3", "--hidden", "8", "--embedding", "4", "--batch-size", "4", "--seq-len", "8"]


def _run(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_line_error(status, err, *fragments):
    assert status == 1, err
    assert err.startswith("autograd-core: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def _train(capsys, data_dir, out, *extra):
    return _run(capsys, "train", "softmax", "--epochs", 1, "--batch-size", 20, "--data-dir", data_dir,
                "--out", out, "--no-download", "--no-progress", *extra)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


# -- item 6: checked before the first step -------------------------------------------------


def test_train_refuses_an_unusable_out_before_training(capsys, data_dir, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    status, out, err = _train(capsys, data_dir, a_file)
    _one_line_error(status, err, "--out", "is a file")
    assert "epoch" not in out
    # below a file: NotADirectoryError, which root cannot bypass as it bypasses chmod
    status, out, err = _train(capsys, data_dir, a_file / "run")
    _one_line_error(status, err, "Not a directory")
    assert "epoch" not in out
    # a directory where the checkpoint must go: found now, not after the first epoch
    run = tmp_path / "run"
    (run / "checkpoint.npz").mkdir(parents=True)
    status, out, err = _train(capsys, data_dir, run)
    _one_line_error(status, err, "checkpoint.npz", "is a directory")
    assert "epoch" not in out


def test_train_refuses_an_empty_training_file(capsys, data_dir, tmp_path):
    from nn import data

    empty = tmp_path / "empty-data"
    empty.mkdir()
    for split in ("train", "test"):
        images_name, labels_name = data.FASHION_MNIST_FILES[split]
        count = 0 if split == "train" else 3
        data.write_idx(empty / images_name, np.zeros((count, 28, 28), np.uint8))
        data.write_idx(empty / labels_name, np.zeros(count, np.uint8))
    status, out, err = _train(capsys, empty, tmp_path / "run")
    _one_line_error(status, err, "training set holds no examples")
    assert "epoch" not in out and not os.path.exists(tmp_path / "run" / "checkpoint.npz")


def test_train_lm_refuses_an_unusable_out_before_training(capsys, corpus, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out, fragment in ((a_file / "lm.npz", "is a file, not a directory"), (tmp_path, "is a directory")):
        status, printed, err = _run(capsys, "train-lm", corpus, "--out", out, *LM_SMALL)
        _one_line_error(status, err, "--out", fragment)
        assert "step" not in printed
    status, printed, err = _run(capsys, "train-lm", corpus, "--out", tmp_path / "lm.npz", "--history",
                                a_file / "h.json", *LM_SMALL)
    _one_line_error(status, err, "--history")
    assert "step" not in printed and not os.path.exists(tmp_path / "lm.npz")


def test_train_lm_refuses_a_too_short_validation_split_before_training(capsys, corpus, tmp_path):
    out = tmp_path / "lm.npz"
    status, printed, err = _run(capsys, "train-lm", corpus, "--out", out, "--validation-fraction", "0.0005",
                                *LM_SMALL)
    _one_line_error(status, err, "validation split holds 1 character(s)", "at least 2")
    assert "step" not in printed and not out.exists()
    status, printed, err = _run(capsys, "train-lm", corpus, "--out", out, "--batch-size", "1000",
                                *LM_SMALL[:-4])
    _one_line_error(status, err, "too few for 1000 streams")


@pytest.mark.parametrize("option, value", [("--minutes", "0"), ("--minutes", "nan"), ("--minutes", "inf"),
                                           ("--lr", "nan"), ("--lr", "inf"), ("--batch-size", "0"),
                                           ("--seq-len", "0"), ("--clip", "-1"), ("--dropout", "1"),
                                           ("--eval-every", "-1"), ("--validation-fraction", "0"),
                                           ("--validation-fraction", "1")])
def test_train_lm_refuses_bad_values_while_parsing(capsys, corpus, option, value):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-lm", str(corpus), option, value])
    assert exit_info.value.code == 2 and option in capsys.readouterr().err


def test_a_diverged_language_model_stops_and_keeps_the_last_good_checkpoint(capsys, corpus, tmp_path):
    out = tmp_path / "lm.npz"
    assert cli.main(["train-lm", str(corpus), "--out", str(out), *LM_SMALL, "--eval-every", "0"]) == 0
    capsys.readouterr()
    good = out.read_bytes()
    # lr 1e10 without clipping: the loss stays finite (1e10 nats/char) but the run is ruined
    status, printed, err = _run(capsys, "train-lm", corpus, "--out", out, *LM_SMALL[2:], "--max-steps", "30",
                                "--lr", "1e10", "--clip", "0", "--eval-every", "0")
    _one_line_error(status, err, "at step 2 (epoch 1)", "training diverged", "stopped before that step's update")
    assert out.read_bytes() == good   # not overwritten by the ruined weights
    assert "best validation" not in printed


def test_train_lm_saves_at_every_evaluation(capsys, corpus, tmp_path):
    out = tmp_path / "lm.npz"
    steps = []

    def stop_after_second_evaluation(history):
        steps.append(history[-1]["step"])
        if len(steps) == 2:
            raise KeyboardInterrupt  # the user's Ctrl-C during the run

    original = text.train_language_model

    def interrupted(*args, after_evaluation=None, **kwargs):
        def both(history):
            after_evaluation(history)
            stop_after_second_evaluation(history)
        return original(*args, after_evaluation=both, **kwargs)

    text.train_language_model = interrupted
    try:
        status, _, err = _run(capsys, "train-lm", corpus, "--out", out, *LM_SMALL[2:], "--max-steps", "10",
                              "--eval-every", "2")
    finally:
        text.train_language_model = original
    assert status == 130 and "interrupted" in err
    _, _, metadata = text.load_language_model(out)
    assert [entry["step"] for entry in metadata["history"]] == [2, 4]


# -- item 7: one line for every user error ---------------------------------------------------


def _trained_checkpoint(capsys, data_dir, tmp_path):
    run = tmp_path / "run"
    status, _, err = _train(capsys, data_dir, run)
    assert status == 0, err
    return run / "checkpoint.npz"


def _rewrite(path, destination, metadata=None, **arrays):
    stored = checkpoint.load(path)
    if metadata is not None:
        stored[checkpoint.METADATA_KEY] = np.array(json.dumps(metadata))
    stored.update(arrays)
    checkpoint.save(destination, stored)
    return destination


@pytest.mark.parametrize("metadata, fragment", [
    (["a", "list"], "metadata is a JSON list, expected an object"),
    ({"model": 5, "epoch": 1}, "field 'model' is 5"),
    ({"model": "softmax", "epoch": "one"}, "field 'epoch' is 'one'"),
    ({"model": "softmax", "epoch": -3}, "field 'epoch' is -3"),
    ({"model": "softmax", "epoch": 1, "history": 5}, "field 'history' is 5"),
    ({"model": "softmax", "epoch": 1, "config": []}, "field 'config' is []"),
])
def test_crafted_checkpoint_metadata_is_one_line(capsys, data_dir, tmp_path, metadata, fragment):
    crafted = _rewrite(_trained_checkpoint(capsys, data_dir, tmp_path), tmp_path / "crafted.npz", metadata)
    status, _, err = _run(capsys, "evaluate", "--checkpoint", crafted, "--data-dir", data_dir, "--no-download")
    _one_line_error(status, err, "crafted.npz", fragment)
    status, out, err = _train(capsys, data_dir, tmp_path / "resumed", "--epochs", 3, "--resume", crafted)
    _one_line_error(status, err, "crafted.npz", fragment)
    assert "epoch" not in out


def test_evaluate_checks_the_pictures_directory_before_evaluating(capsys, data_dir, tmp_path):
    run = tmp_path / "ae"
    status, _, err = _run(capsys, "train", "ae", "--epochs", 1, "--batch-size", 50, "--data-dir", data_dir,
                          "--out", run, "--no-download", "--no-progress", "--limit-train", 50)
    assert status == 0, err
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    status, out, err = _run(capsys, "evaluate", "--checkpoint", run / "checkpoint.npz", "--data-dir", data_dir,
                            "--no-download", "--pictures", a_file / "pictures")
    _one_line_error(status, err, "--pictures", "Not a directory")
    assert "test" not in out


def test_crafted_optimizer_step_is_one_line(capsys, data_dir, tmp_path):
    trained = _trained_checkpoint(capsys, data_dir, tmp_path)
    steps = [key for key in checkpoint.load(trained) if key.endswith(".step")]
    assert steps  # Adam counts its steps
    crafted = _rewrite(trained, tmp_path / "crafted.npz", **{steps[0]: np.array(-1)})
    status, _, err = _train(capsys, data_dir, tmp_path / "resumed", "--epochs", 2, "--optimizer", "adam",
                            "--resume", crafted)
    _one_line_error(status, err, "expected an integer step count >= 0")
    for value in (np.array("fast"), np.array(np.nan), np.array([0.1, 0.2])):
        crafted = _rewrite(trained, tmp_path / "crafted.npz", **{"optim/group.0.lr": value})
        status, _, err = _train(capsys, data_dir, tmp_path / "resumed", "--epochs", 2, "--optimizer", "adam",
                                "--resume", crafted)
        _one_line_error(status, err, "'group.0.lr' is", "expected a finite number like")


def test_paths_that_are_not_files_are_one_line(capsys, data_dir, tmp_path, corpus):
    status, _, err = _run(capsys, "train-lm", tmp_path, "--out", tmp_path / "lm.npz", *LM_SMALL)
    _one_line_error(status, err, "IsADirectoryError", str(tmp_path))
    status, _, err = _run(capsys, "train-lm", tmp_path / "missing.txt", "--out", tmp_path / "lm.npz", *LM_SMALL)
    _one_line_error(status, err, "missing.txt", "No such file")
    status, _, err = _run(capsys, "evaluate", "--checkpoint", tmp_path, "--data-dir", data_dir)
    _one_line_error(status, err, "is a directory")
    status, _, err = _run(capsys, "sample", corpus)
    _one_line_error(status, err, "not an .npz archive")


def test_the_reporter_keeps_programming_errors_and_names_the_class():
    def bug(args):
        raise TypeError("a genuine bug")

    with pytest.raises(TypeError, match="a genuine bug"):
        arguments.run_reporting_errors(bug, None, "prog")
    assert arguments.describe_error(PermissionError(13, "Permission denied", "/x")) == \
        "PermissionError: /x: Permission denied"
    assert arguments.describe_error(MemoryError()) == "out of memory"
    assert arguments.describe_error(ValueError("plain")) == "plain"


def test_python_dash_m_entry_points_report_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit):
        text.main(["train", str(tmp_path / "missing.txt"), "--validation-fraction", "2"])
    capsys.readouterr()
    assert text.main(["train", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "lm.npz")]) == 1
    assert capsys.readouterr().err.startswith("python -m nn.apps.text: error: ")


# -- item 8: metadata agrees with the arrays -------------------------------------------------


def _language_model(capsys, corpus, tmp_path):
    out = tmp_path / "lm.npz"
    assert cli.main(["train-lm", str(corpus), "--out", str(out), *LM_SMALL, "--eval-every", "0"]) == 0
    capsys.readouterr()
    return out


@pytest.mark.parametrize("change, fragment", [
    ({"config": {"vocab_size": 100_000_000}}, "disagrees with the array 'model/embedding.weight'"),
    ({"config": {"hidden_size": 4096}}, "disagrees with the array"),
    ({"config": {"num_layers": 1000}}, "disagrees with the array 'model/lstm.weight_hh_l1'"),
    ({"config": {"embedding_dim": "64"}}, "config embedding_dim is '64', expected an integer >= 1"),
    ({"config": {"dropout": 2}}, "config dropout is 2"),
    ({"config": None}, "metadata config is None"),
    ({"vocabulary": "[\"a\"]"}, "expected a JSON list of"),
    ({"vocabulary": 7}, "metadata vocabulary is 7"),
    ({"kind": "other"}, "not a character language model"),
])
def test_crafted_language_model_metadata_is_refused_before_building(capsys, corpus, tmp_path, change,
                                                                   fragment):
    trained = _language_model(capsys, corpus, tmp_path)
    metadata = checkpoint.read_metadata(trained)
    for key, value in change.items():
        if isinstance(value, dict):
            metadata[key] = dict(metadata[key], **value)
        else:
            metadata[key] = value
    crafted = _rewrite(trained, tmp_path / "crafted.npz", metadata)
    status, _, err = _run(capsys, "sample", crafted, "--length", 5)
    _one_line_error(status, err, "crafted.npz", fragment)


# -- item 9: a resumed run that differs says so ------------------------------------------------


def test_resuming_with_another_batch_size_or_limit_warns(capsys, data_dir, tmp_path):
    first = _trained_checkpoint(capsys, data_dir, tmp_path)
    status, out, err = _train(capsys, data_dir, tmp_path / "same", "--epochs", 2, "--resume", first)
    assert status == 0 and "warning" not in err
    status, out, err = _run(capsys, "train", "softmax", "--epochs", 2, "--batch-size", 50, "--data-dir", data_dir,
                            "--out", tmp_path / "other", "--no-download", "--no-progress", "--limit-train", 120,
                            "--resume", first)
    assert status == 0, err
    assert "warning: --resume" in err and "batch size 20 -> 50" in err and "--limit-train None -> 120" in err
    assert f"training examples {TRAIN_COUNT} -> 120" in err and "resumed from" in out
