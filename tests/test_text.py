"""The character language model: vocabulary, batching, a short training run, sampling,
checkpoints and the command line, all on tiny texts so the file stays fast."""
import json
import math

import numpy as np
import pytest

import nn
from nn.apps.text import (CharLanguageModel, CharVocabulary, batch_streams, chunks, evaluate_language_model,
                          load_language_model, load_text, main, sample, save_language_model, split_ids,
                          train_language_model)

TEXT = "the cat sat on the mat. " * 40


def test_vocabulary_round_trip_and_unicode(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("héllo, wörld ✓\n", encoding="utf-8")
    text = load_text(path)
    vocabulary = CharVocabulary(text)
    assert vocabulary.chars == sorted(set(text)) and vocabulary.size == len(set(text))
    ids = vocabulary.encode(text)
    assert ids.dtype == np.int64 and vocabulary.decode(ids) == text
    assert CharVocabulary.from_json(vocabulary.to_json()).chars == vocabulary.chars
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocabulary.encode("z")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_text(tmp_path / "bad.txt")


def test_split_holds_out_the_last_part():
    ids = np.arange(100)
    train, validation = split_ids(ids, 0.1)
    np.testing.assert_array_equal(train, np.arange(90))
    np.testing.assert_array_equal(validation, np.arange(90, 100))
    with pytest.raises(ValueError):
        split_ids(ids, 1.0)


def test_streams_and_chunks_cover_the_text_with_shifted_targets():
    ids = np.arange(103)
    streams = batch_streams(ids, 4)
    assert streams.shape == (4, 25)
    np.testing.assert_array_equal(streams[1], np.arange(25, 50))  # contiguous streams
    pieces = list(chunks(streams, 10))
    assert [p[0].shape[1] for p in pieces] == [10, 10, 4]
    for inputs, targets in pieces:
        np.testing.assert_array_equal(targets, inputs + 1)
    # consecutive chunks continue each stream where the last stopped (state carries over)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in pieces], axis=1), streams[:, :-1])
    assert list(chunks(streams, 10, offset=3))[0][0][0, 0] == 3
    with pytest.raises(ValueError, match="too few"):
        batch_streams(np.arange(5), 4)


def test_training_lowers_validation_loss_and_sample_follows_the_text():
    nn.init.manual_seed(0)
    vocabulary = CharVocabulary(TEXT)
    train_ids, validation_ids = split_ids(vocabulary.encode(TEXT), 0.1)
    model = CharLanguageModel(vocabulary.size, embedding_dim=8, hidden_size=32)
    before = evaluate_language_model(model, validation_ids, batch_size=2, seq_len=20)
    assert abs(before - math.log(vocabulary.size)) < 0.5  # untrained: about uniform
    logs = []
    history = train_language_model(model, train_ids, validation_ids, batch_size=4, seq_len=20, lr=0.01,
                                   max_steps=60, eval_every=30, eval_batch_size=2, eval_seq_len=20,
                                   log=logs.append)
    assert [h["step"] for h in history] == [30, 60, 60] and len(logs) == 3
    assert history[-1]["validation_loss"] < 0.6 * before
    text = sample(model, vocabulary, prime="the c", length=30, temperature=0.3,
                  generator=np.random.default_rng(0))
    assert text.startswith("the c") and len(text) == 35 and set(text) <= set(TEXT)
    assert "the" in text[5:]  # it has learned the text's most common word
    # same generator seed, same text
    again = sample(model, vocabulary, prime="the c", length=30, temperature=0.3,
                   generator=np.random.default_rng(0))
    assert again == text
    with pytest.raises(ValueError, match="temperature"):
        sample(model, vocabulary, length=3, temperature=0)


def test_truncated_bptt_graph_stays_one_chunk_long():
    """The state passed between chunks is detached: backward never reaches an earlier chunk."""
    nn.init.manual_seed(1)
    model = CharLanguageModel(5, embedding_dim=3, hidden_size=4)
    logits, state = model(np.zeros((2, 6), dtype=np.int64))
    assert logits.shape == (2, 6, 5) and state[0].shape == (1, 2, 4)
    assert all(s.requires_grad for s in state)
    history = train_language_model(model, np.arange(200) % 5, np.arange(50) % 5, batch_size=2,
                                   seq_len=5, max_steps=3, eval_every=0, eval_batch_size=2, log=None)
    assert len(history) == 1 and history[0]["step"] == 3
    with pytest.raises(ValueError, match="never ends"):
        train_language_model(model, np.arange(200) % 5, np.arange(50) % 5, log=None)


def test_checkpoint_round_trip(tmp_path):
    nn.init.manual_seed(2)
    vocabulary = CharVocabulary("abc\n")
    model = CharLanguageModel(vocabulary.size, embedding_dim=4, hidden_size=6, num_layers=2)
    path = tmp_path / "lm.npz"
    save_language_model(path, model, vocabulary, extra={"note": "test"})
    restored, restored_vocabulary, metadata = load_language_model(path)
    assert restored_vocabulary.chars == vocabulary.chars and metadata["note"] == "test"
    ids = np.array([[0, 1, 2, 3]])
    np.testing.assert_array_equal(restored(ids)[0].data, model(ids)[0].data)


def test_command_line_train_and_sample(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out, history = tmp_path / "lm.npz", tmp_path / "history.json"
    assert main(["train", str(corpus), "--out", str(out), "--max-steps", "4", "--hidden", "16",
                 "--embedding", "8", "--batch-size", "4", "--seq-len", "16", "--eval-every", "2",
                 "--history", str(history)]) == 0
    assert "best validation" in capsys.readouterr().out
    assert [h["step"] for h in json.loads(history.read_text())] == [2, 4, 4]
    assert main(["sample", str(out), "--prime", "the", "--length", "12"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("the") and len(printed.rstrip("\n")) >= 15


def test_autograd_core_cli_has_train_lm_and_sample(tmp_path, capsys):
    from nn.apps import cli
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "lm.npz"
    assert cli.main(["train-lm", str(corpus), "--out", str(out), "--max-steps", "2", "--hidden", "8",
                     "--embedding", "4", "--batch-size", "4", "--seq-len", "8", "--eval-every", "0"]) == 0
    capsys.readouterr()
    assert cli.main(["sample", str(out), "--prime", "cat", "--length", "5"]) == 0
    assert capsys.readouterr().out.startswith("cat")
