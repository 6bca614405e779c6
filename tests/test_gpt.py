"""The character GPT of ``train-lm --arch gpt`` (nn/apps/gpt.py): causality, training,
checkpoints, sampling, the command line, and (with torch) the PyTorch twin of
benchmarks/gpt_torch_reference.py giving the same losses from the same weights."""
import os
import sys

import numpy as np
import pytest

from nn import init
from nn.apps import gpt, text
from nn.apps.cli import main as cli_main

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n" * 20


def small_model(vocab=12, dropout=0.0):
    init.manual_seed(0)
    return gpt.CharGPT(vocab, context=16, channels=16, layers=2, heads=2, dropout=dropout)


def test_changing_a_later_character_leaves_earlier_logits_unchanged():
    model = small_model()
    model.eval()
    ids = np.random.default_rng(1).integers(0, 12, size=(2, 16))
    before = model(ids).data
    changed = ids.copy()
    changed[:, 9] = (changed[:, 9] + 5) % 12
    after = model(changed).data
    np.testing.assert_array_equal(before[:, :9], after[:, :9])
    assert not np.allclose(before[:, 9:], after[:, 9:])  # and the later ones do see it


def test_head_is_tied_to_the_token_embedding():
    model = small_model()
    names = [name for name, _ in model.named_parameters()]
    assert "token_embedding.weight" in names and not any("head" in name for name in names)
    # a gradient reaches the embedding through the head even for characters never input
    ids = np.zeros((1, 4), dtype=np.int64)
    from nn.functional import cross_entropy
    cross_entropy(model(ids).reshape(-1, 12), np.full(4, 7)).backward()
    assert np.abs(model.token_embedding.weight.grad.data[7]).sum() > 0


def test_training_lowers_the_loss_and_the_checkpoint_round_trips(tmp_path):
    vocabulary = text.CharVocabulary(TEXT)
    train_ids, validation_ids = text.split_ids(vocabulary.encode(TEXT))
    model = small_model(vocabulary.size, dropout=0.1)
    before = gpt.evaluate_gpt(model, validation_ids)
    history = gpt.train_gpt(model, train_ids, validation_ids, batch_size=8, lr=3e-3, warmup=5, max_steps=40,
                            eval_every=20, log=None)
    assert [h["step"] for h in history] == [20, 40]
    assert all(np.isfinite(h["train_loss"]) for h in history)
    assert history[-1]["validation_loss"] < before - 0.5
    path = str(tmp_path / "gpt.npz")
    text.save_language_model(path, model, vocabulary)
    loaded, loaded_vocabulary, metadata = text.load_language_model(path)
    assert metadata["kind"] == "char-gpt" and isinstance(loaded, gpt.CharGPT)
    assert loaded.config() == model.config() and loaded_vocabulary.chars == vocabulary.chars
    assert gpt.evaluate_gpt(loaded, validation_ids) == pytest.approx(gpt.evaluate_gpt(model, validation_ids))
    sampled = text.sample(loaded, loaded_vocabulary, prime="First", length=40,
                          generator=np.random.default_rng(0))
    assert sampled.startswith("First") and len(sampled) == 5 + 40  # longer than the context: it slides


def test_checkpoint_whose_config_disagrees_with_its_arrays_is_refused(tmp_path):
    vocabulary = text.CharVocabulary(TEXT)
    model = small_model(vocabulary.size)
    path = str(tmp_path / "gpt.npz")
    from nn import checkpoint
    metadata = dict(kind="char-gpt", config=dict(model.config(), layers=3), vocabulary=vocabulary.to_json())
    checkpoint.save_training_state(path, model, metadata=metadata)
    with pytest.raises(ValueError, match="blocks.2.attn.qkv.weight"):
        text.load_language_model(path)


def test_warmup_then_cosine_schedule():
    factor = gpt.warmup_cosine(10, 110)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.55) and factor(110) == pytest.approx(0.1)
    assert factor(10) > factor(50) > factor(100)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        gpt.CharGPT(10, channels=10, heads=3)
    model = small_model()
    with pytest.raises(ValueError, match="context"):
        model(np.zeros((1, 17), dtype=np.int64))


def test_train_lm_arch_gpt_and_sample_from_the_command_line(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    out = str(tmp_path / "lm.npz")
    assert cli_main(["train-lm", str(corpus), "--arch", "gpt", "--steps", "6", "--layers", "1", "--heads", "2",
                     "--channels", "8", "--context", "8", "--batch-size", "4", "--warmup", "2",
                     "--eval-every", "3", "--out", out]) == 0
    assert "best validation" in capsys.readouterr().out
    assert cli_main(["sample", out, "--length", "12", "--prime", "Sp"]) == 0
    assert len(capsys.readouterr().out[:-1]) == 14  # print adds one newline


def test_the_torch_twin_gives_the_same_losses():
    torch = pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    try:
        import gpt_torch_reference as reference
    finally:
        sys.path.pop(0)
    model = small_model()
    twin = reference.build_torch_gpt(torch, 12, 16, 16, 2, 2)
    twin.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in model.state_dict().items()})
    ids = np.random.default_rng(2).integers(0, 12, size=(3, 16))
    np.testing.assert_allclose(model(ids).data, twin(torch.from_numpy(ids)).detach().numpy(), rtol=1e-4, atol=1e-5)
    validation = np.random.default_rng(3).integers(0, 12, size=100)
    assert gpt.evaluate_gpt(model, validation) == pytest.approx(reference.evaluate_torch(torch, twin, validation),
                                                               rel=1e-5)


@pytest.mark.parametrize("rows", [False, True], ids=["batch_time", "rows"])
def test_packed_attention_matches_the_ops_it_fuses(rows):
    # PackedAttention (one node) against the same attention written with ops
    # (_split_attend_merge, its graph form): values, gradients and second derivatives
    import autograd_core as ag

    rng = np.random.default_rng(3)
    batch, length, heads, head_dim = 3, 7, 2, 4
    shape = (batch * length, 3 * heads * head_dim) if rows else (batch, length, 3 * heads * head_dim)
    packed = ag.tensor(rng.standard_normal(shape), requires_grad=True)
    mask = np.where(np.tril(np.ones((length, length), dtype=bool)), 0.0, -np.inf)
    weight = ag.tensor(rng.standard_normal(shape[:-1] + (heads * head_dim,)))
    fused = gpt.PackedAttention.apply(packed, heads, mask, 0.3)
    composed = gpt._split_attend_merge(packed, heads, mask, 0.3)
    assert fused.shape == composed.shape == weight.shape
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12, atol=1e-12)
    (grad_fused,) = ag.grad((fused * weight).sum(), [packed])
    (grad_composed,) = ag.grad((composed * weight).sum(), [packed])
    np.testing.assert_allclose(grad_fused.data, grad_composed.data, rtol=1e-10, atol=1e-12)
    assert ag.gradcheck(lambda p: gpt.PackedAttention.apply(p, heads, mask, 0.3), (packed,))
    # the graph form: a gradient of the gradient
    (first,) = ag.grad((gpt.PackedAttention.apply(packed, heads, mask, 0.3) * weight).sum(), [packed],
                       create_graph=True)
    (second,) = ag.grad((first * first).sum(), [packed])
    (first_ops,) = ag.grad((gpt._split_attend_merge(packed, heads, mask, 0.3) * weight).sum(), [packed],
                           create_graph=True)
    (second_ops,) = ag.grad((first_ops * first_ops).sum(), [packed])
    np.testing.assert_allclose(second.data, second_ops.data, rtol=1e-10, atol=1e-12)
    assert np.abs(second.data).max() > 0


def test_packed_attention_in_float32_matches_float64():
    rng = np.random.default_rng(4)
    packed = rng.standard_normal((2, 5, 3 * 8))
    mask = np.where(np.tril(np.ones((5, 5), dtype=bool)), 0.0, -np.inf)
    import autograd_core as ag
    wide = gpt.PackedAttention.apply(ag.tensor(packed), 2, mask, 0.5)
    narrow = gpt.PackedAttention.apply(ag.tensor(packed.astype(np.float32)), 2, mask.astype(np.float32), 0.5)
    assert narrow.dtype == np.float32
    np.testing.assert_allclose(narrow.data, wide.data, rtol=1e-5, atol=1e-6)
