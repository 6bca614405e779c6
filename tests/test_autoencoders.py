"""Autoencoders: tied weights really shared, the reparameterized sample's gradient by
gradcheck, the KL term against its closed form, each model learning on a small batch,
corruption only in training, and the CLI tasks' metrics and pictures."""
import numpy as np
import pytest

import autograd_core as ag
import nn
from nn.apps import ae_tasks, plots
from nn.autoencoders import (DenoisingAutoencoder, StackedAutoencoder, TiedLinear, VariationalAutoencoder,
                             reconstruction_loss, reparameterize)
from nn.losses import gaussian_kl

SMALL = (12, 7, 4, 7, 12)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These matrices are tiny: a second kernel thread only adds hand-off overhead (and
    waits for a core that the rest of the machine may be using)."""
    previous = ag.get_num_threads()
    ag.set_num_threads(1)
    yield
    ag.set_num_threads(previous)


def images(n=32, seed=0, side=28):
    """Structured synthetic 'images' in [0, 1]: a few smooth blobs per image, so an
    autoencoder has something learnable (random pixels would not be)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = np.zeros((n, side, side), dtype=np.float64)
    for i in range(n):
        for _ in range(2):
            cy, cx, width = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
    return np.clip(out, 0, 1).astype(np.float32)[..., None]


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


# ---- stacked autoencoder and tied weights ------------------------------------------------
def test_tied_weights_are_the_same_parameter_objects():
    model = StackedAutoencoder((784, 300, 150, 300, 784), tie_weights=True)
    assert isinstance(model.decoder[0], TiedLinear) and isinstance(model.decoder[1], TiedLinear)
    assert model.decoder[0].weight is model.encoder[1].weight
    assert model.decoder[1].weight is model.encoder[0].weight
    names = [name for name, _ in model.named_parameters()]
    assert names == ["encoder.0.weight", "encoder.0.bias", "encoder.1.weight", "encoder.1.bias",
                     "decoder.0.bias", "decoder.1.bias"]
    assert set(model.state_dict()) == set(names)


def test_tied_weights_halve_the_parameter_count():
    untied = StackedAutoencoder((784, 300, 150, 300, 784))
    tied = StackedAutoencoder((784, 300, 150, 300, 784), tie_weights=True)
    weights = 784 * 300 + 300 * 150
    assert parameter_count(untied) == 2 * weights + (300 + 150 + 300 + 784)
    assert parameter_count(tied) == weights + (300 + 150 + 300 + 784)
    assert 0.49 < parameter_count(tied) / parameter_count(untied) < 0.51


def test_tied_gradient_is_the_sum_of_both_uses():
    """The one shared weight gets d loss/d W from the encoder plus the transpose of the
    decoder's: compare with an untied twin whose decoder holds W's transposes."""
    ag.manual_seed(3)
    tied = StackedAutoencoder(SMALL, tie_weights=True, dtype=np.float64)
    untied = StackedAutoencoder(SMALL, dtype=np.float64)
    for index in range(2):
        untied.encoder[index].weight.data[...] = tied.encoder[index].weight.data
        untied.encoder[index].bias.data[...] = tied.encoder[index].bias.data
        untied.decoder[index].bias.data[...] = tied.decoder[index].bias.data
    untied.decoder[0].weight.data[...] = tied.encoder[1].weight.data.T
    untied.decoder[1].weight.data[...] = tied.encoder[0].weight.data.T
    x = ag.tensor(np.random.default_rng(0).uniform(0, 1, (5, 12)), dtype=np.float64)
    tied.loss(x).backward()
    untied.loss(x).backward()
    np.testing.assert_allclose(float(tied.loss(x).data), float(untied.loss(x).data), rtol=1e-12)
    for encoder_index, decoder_index in ((0, 1), (1, 0)):
        expected = (untied.encoder[encoder_index].weight.grad.data
                    + untied.decoder[decoder_index].weight.grad.data.T)
        np.testing.assert_allclose(tied.encoder[encoder_index].weight.grad.data, expected, rtol=1e-10, atol=1e-12)
        # both uses contribute: neither part alone is the whole gradient
        assert not np.allclose(tied.encoder[encoder_index].weight.grad.data,
                               untied.encoder[encoder_index].weight.grad.data)


def test_tied_gradient_matches_finite_differences():
    ag.manual_seed(4)
    model = StackedAutoencoder(SMALL, tie_weights=True, dtype=np.float64)
    x = ag.tensor(np.random.default_rng(1).uniform(0, 1, (4, 12)), dtype=np.float64)
    model.loss(x).backward()
    weight = model.encoder[0].weight
    eps = 1e-6
    for index in [(0, 0), (3, 5), (6, 11)]:
        original = weight.data[index]
        weight.data[index] = original + eps  # moves the encoder and the decoder at once
        plus = float(model.loss(x).data)
        weight.data[index] = original - eps
        minus = float(model.loss(x).data)
        weight.data[index] = original
        np.testing.assert_allclose(weight.grad.data[index], (plus - minus) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_tied_weights_survive_an_optimizer_step_and_a_checkpoint_round_trip():
    ag.manual_seed(5)
    model = StackedAutoencoder(SMALL, tie_weights=True)
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-2)
    x = ag.tensor(np.random.default_rng(5).uniform(0, 1, (4, 12)).astype(np.float32))
    before = model.decoder[1].weight.data.copy()
    model.loss(x).backward()
    optimizer.step()
    assert model.decoder[1].weight is model.encoder[0].weight
    assert not np.array_equal(model.decoder[1].weight.data, before)
    state = model.state_dict()
    other = StackedAutoencoder(SMALL, tie_weights=True)
    other.load_state_dict(state)
    assert other.decoder[1].weight is other.encoder[0].weight
    np.testing.assert_array_equal(other.decoder[1].weight.data, model.encoder[0].weight.data)


def test_stacked_autoencoder_shapes_and_activations():
    model = StackedAutoencoder((784, 300, 150, 300, 784))
    x = ag.tensor(images(3))
    assert model.encode(x).shape == (3, 150)
    assert model(x).shape == (3, 28, 28, 1)
    reconstruction = model.reconstruct(x).data
    assert reconstruction.shape == (3, 28, 28, 1) and reconstruction.dtype == np.float32
    assert np.all((reconstruction > 0) & (reconstruction < 1))
    # ELU codes can go negative, but never below -alpha
    codes = model.encode(x).data
    assert codes.min() >= -1.0


@pytest.mark.parametrize("sizes", [(784,), (784, 300), (784, 300, 150, 300), (784, 300, 150, 200, 784),
                                   (784, 0, 784)])
def test_stacked_autoencoder_rejects_asymmetric_sizes(sizes):
    with pytest.raises(ValueError, match="StackedAutoencoder"):
        StackedAutoencoder(sizes)


def test_stacked_autoencoder_rejects_wrong_input_size():
    model = StackedAutoencoder(SMALL)
    with pytest.raises(ValueError, match="12 values per example"):
        model(ag.tensor(np.zeros((2, 13), dtype=np.float32)))


def test_reconstruction_loss_is_bce_summed_over_pixels_averaged_over_batch():
    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(3, 5)), rng.uniform(size=(3, 5))
    probabilities = 1 / (1 + np.exp(-logits))
    expected = -np.sum(target * np.log(probabilities) + (1 - target) * np.log(1 - probabilities)) / 3
    value = reconstruction_loss(ag.tensor(logits, dtype=np.float64), target, "bce")
    np.testing.assert_allclose(float(value.data), expected, rtol=1e-12)
    value = reconstruction_loss(ag.tensor(logits, dtype=np.float64), target, "mse")
    np.testing.assert_allclose(float(value.data), np.sum((logits - target) ** 2) / 3, rtol=1e-12)


# ---- denoising autoencoder ---------------------------------------------------------------------
def test_denoising_corrupts_only_in_training():
    ag.manual_seed(6)
    model = DenoisingAutoencoder(SMALL, noise="gaussian", noise_level=0.3)
    x = ag.tensor(np.random.default_rng(0).uniform(0, 1, (6, 12)).astype(np.float32))
    clean = StackedAutoencoder.forward(model, x).data
    model.eval()
    np.testing.assert_array_equal(model(x).data, clean)
    model.train()
    assert not np.allclose(model(x).data, clean)


def test_gaussian_corruption_has_the_given_level():
    model = DenoisingAutoencoder(SMALL, noise="gaussian", noise_level=0.25,
                                 generator=np.random.default_rng(0))
    x = ag.tensor(np.full((400, 12), 0.5, dtype=np.float32))
    noise = model.corrupt(x).data - 0.5
    assert abs(noise.mean()) < 0.01
    assert abs(noise.std() - 0.25) < 0.01


def test_dropout_corruption_zeroes_the_given_fraction():
    model = DenoisingAutoencoder(SMALL, noise="dropout", noise_level=0.4, generator=np.random.default_rng(0))
    x = ag.tensor(np.ones((400, 12), dtype=np.float32))
    corrupted = model.corrupt(x).data
    assert abs(np.mean(corrupted == 0) - 0.4) < 0.02
    np.testing.assert_allclose(corrupted[corrupted != 0], 1 / 0.6, rtol=1e-6)


@pytest.mark.parametrize("noise, level", [("salt", 0.1), ("dropout", 1.0), ("gaussian", -0.1)])
def test_denoising_rejects_bad_noise(noise, level):
    with pytest.raises(ValueError, match="DenoisingAutoencoder"):
        DenoisingAutoencoder(SMALL, noise=noise, noise_level=level)


# ---- variational autoencoder: reparameterization and KL -------------------------------------
def test_reparameterized_sample_passes_gradcheck_with_fixed_noise():
    rng = np.random.default_rng(7)
    mu = ag.tensor(rng.normal(size=(3, 4)), dtype=np.float64, requires_grad=True)
    logvar = ag.tensor(rng.normal(size=(3, 4)), dtype=np.float64, requires_grad=True)
    noise = rng.standard_normal((3, 4))
    assert ag.gradcheck(lambda m, v: reparameterize(m, v, noise), (mu, logvar))


def test_reparameterized_sample_through_the_decoder_passes_gradcheck():
    ag.manual_seed(8)
    model = VariationalAutoencoder(10, (6,), 3, dtype=np.float64)
    rng = np.random.default_rng(8)
    mu = ag.tensor(rng.normal(size=(2, 3)), dtype=np.float64, requires_grad=True)
    logvar = ag.tensor(rng.normal(size=(2, 3)) * 0.5, dtype=np.float64, requires_grad=True)
    noise = rng.standard_normal((2, 3))
    assert ag.gradcheck(lambda m, v: model.decode(model.reparameterize(m, v, noise)), (mu, logvar))


def test_reparameterized_sample_has_the_posterior_distribution():
    mu = ag.tensor(np.array([[1.5, -2.0]]), dtype=np.float64)
    logvar = ag.tensor(np.array([[np.log(0.25), np.log(4.0)]]), dtype=np.float64)
    noise = np.random.default_rng(9).standard_normal((20000, 2))
    z = reparameterize(ag.broadcast_to(mu, (20000, 2)), ag.broadcast_to(logvar, (20000, 2)), noise).data
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0], atol=0.03)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.02)


def kl_closed_form_multivariate(mu, logvar):
    """KL(N(mu, S) || N(0, I)) = 0.5 (tr S + mu.mu - k - log det S), with the covariance
    built as a matrix: an independent route to the diagonal formula."""
    result = []
    for m, v in zip(mu, logvar):
        covariance = np.diag(np.exp(v))
        _, log_det = np.linalg.slogdet(covariance)
        result.append(0.5 * (np.trace(covariance) + m @ m - len(m) - log_det))
    return np.array(result)


def test_kl_equals_its_closed_form():
    rng = np.random.default_rng(10)
    mu, logvar = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    value = gaussian_kl(ag.tensor(mu, dtype=np.float64), ag.tensor(logvar, dtype=np.float64), reduction="none")
    np.testing.assert_allclose(value.data, kl_closed_form_multivariate(mu, logvar), rtol=1e-12)
    zero = gaussian_kl(ag.zeros(2, 3, dtype=np.float64), ag.zeros(2, 3, dtype=np.float64), reduction="none")
    np.testing.assert_array_equal(zero.data, [0.0, 0.0])


def test_kl_matches_a_monte_carlo_estimate():
    """E_q[log q(z) - log p(z)] by sampling agrees with the closed form."""
    mu, logvar = np.array([0.7, -0.3, 1.2]), np.array([-0.5, 0.4, -1.0])
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * np.random.default_rng(11).standard_normal((200000, 3))
    log_q = -0.5 * np.sum(((z - mu) / sigma) ** 2 + logvar + np.log(2 * np.pi), axis=1)
    log_p = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=1)
    closed = gaussian_kl(ag.tensor(mu[None], dtype=np.float64), ag.tensor(logvar[None], dtype=np.float64),
                         reduction="none").data[0]
    np.testing.assert_allclose(np.mean(log_q - log_p), closed, rtol=0.01)


def test_vae_loss_is_reconstruction_plus_closed_form_kl():
    ag.manual_seed(12)
    model = VariationalAutoencoder(12, (8,), 3, dtype=np.float64)
    x = ag.tensor(np.random.default_rng(12).uniform(0, 1, (5, 12)), dtype=np.float64)
    noise = np.random.default_rng(13).standard_normal((5, 3))
    mu, logvar = model.encode(x)
    z = mu.data + np.exp(0.5 * logvar.data) * noise
    logits = model.decode(ag.tensor(z, dtype=np.float64)).data
    probabilities = 1 / (1 + np.exp(-logits))
    bce = -np.sum(x.data * np.log(probabilities) + (1 - x.data) * np.log(1 - probabilities)) / 5
    kl = kl_closed_form_multivariate(mu.data, logvar.data).mean()
    reconstruction, kl_term = model.loss_terms(x, noise)
    np.testing.assert_allclose(float(reconstruction.data), bce, rtol=1e-10)
    np.testing.assert_allclose(float(kl_term.data), kl, rtol=1e-10)
    np.testing.assert_allclose(float(model.loss(x, noise).data), bce + kl, rtol=1e-10)


def test_vae_encode_decode_sample_shapes():
    ag.manual_seed(14)
    model = VariationalAutoencoder(784, (512,), 20, image_shape=(28, 28, 1))
    x = ag.tensor(images(4))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 20)
    assert model.decode(mu).shape == (4, 784)
    logits, mu, logvar = model(x)
    assert logits.shape == (4, 28, 28, 1)
    samples = model.sample(5, generator=np.random.default_rng(0))
    assert samples.shape == (5, 28, 28, 1) and samples.dtype == np.float32 and not samples.requires_grad
    assert np.all((samples.data > 0) & (samples.data < 1))
    again = model.sample(5, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(samples.data, again.data)
    assert VariationalAutoencoder(784, (512,), 2).sample(3).shape == (3, 784)
    with pytest.raises(ValueError, match="decode"):
        model.decode(ag.zeros(2, 19))
    with pytest.raises(ValueError, match="sample"):
        model.sample(0)


def test_vae_parameters_receive_gradients():
    ag.manual_seed(15)
    model = VariationalAutoencoder(12, (8,), 3)
    model.loss(ag.tensor(np.random.default_rng(0).uniform(0, 1, (4, 12)).astype(np.float32))).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.dtype == np.float32
        assert np.any(parameter.grad.data != 0), name


# ---- every model learns on a small batch ---------------------------------------------------------
def loss_after_training(model, x, steps=40, lr=3e-3):
    """(loss before, loss after) ``steps`` Adam steps on one batch, each measured in eval
    mode with fixed noise so that the comparison is not blurred by sampling."""
    def measure():
        model.eval()
        with ag.no_grad():
            if isinstance(model, VariationalAutoencoder):
                value = model.loss(x, np.random.default_rng(0).standard_normal((len(x), model.latent_size)))
            else:
                value = model.loss(x)
        model.train()
        return float(value.data)

    optimizer = nn.optim.Adam(model.parameters(), lr=lr)
    before = measure()
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x).backward()
        optimizer.step()
    return before, measure()


@pytest.mark.parametrize("build", [
    lambda: StackedAutoencoder((196, 48, 12, 48, 196)),
    lambda: StackedAutoencoder((196, 48, 12, 48, 196), tie_weights=True),
    lambda: DenoisingAutoencoder((196, 48, 12, 48, 196), noise="gaussian", noise_level=0.2),
    lambda: DenoisingAutoencoder((196, 48, 12, 48, 196), noise="dropout", noise_level=0.3),
    lambda: VariationalAutoencoder(196, (48,), 6),
], ids=["stacked", "tied", "denoising-gaussian", "denoising-dropout", "variational"])
def test_loss_decreases_on_a_small_batch(build):
    ag.manual_seed(16)
    model = build()
    x = ag.tensor(images(32, side=14))  # 14 x 14: small enough to train in a blink
    before, after = loss_after_training(model, x)
    assert np.isfinite(after)
    assert after < 0.8 * before, (before, after)


# ---- command-line tasks and pictures --------------------------------------------------------------
def test_cli_models_are_registered():
    from nn.apps import models
    for name, kind, parameters in [("ae", StackedAutoencoder, 281734), ("dae", DenoisingAutoencoder, 561934),
                                   ("vae", VariationalAutoencoder, None), ("vae-2d", VariationalAutoencoder, None)]:
        spec = models.get_model_spec(name)
        model = models.build_model(name)
        assert type(model) is kind
        if parameters is not None:
            assert parameter_count(model) == parameters
        assert models.get_task(spec.task).higher_is_better is False
        assert spec.training["batch_size"] == 128 and spec.training["lr"] == 0.001
    assert models.build_model("vae").latent_size == 20
    assert models.build_model("vae").hidden_sizes == (512,)


def loader(n=40, batch_size=16):
    return nn.data.DataLoader(images(n, seed=3), np.arange(n) % 10, batch_size=batch_size)


def test_evaluate_reconstruction_metrics():
    ag.manual_seed(17)
    model = DenoisingAutoencoder((784, 32, 8, 32, 784), noise="gaussian", noise_level=0.2).eval()
    with ag.no_grad():
        metrics = ae_tasks.evaluate_reconstruction(model, loader())
        again = ae_tasks.evaluate_reconstruction(model, loader())
    assert metrics == again  # fixed evaluation noise: reproducible
    x = ag.tensor(images(40, seed=3))
    with ag.no_grad():
        np.testing.assert_allclose(metrics["loss"], float(model.loss(x).data), rtol=1e-5)
        reconstruction = model.reconstruct(x).data
    np.testing.assert_allclose(metrics["mse"], np.mean((reconstruction - x.data) ** 2), rtol=1e-5)
    assert metrics["denoising_loss"] > 0


def test_evaluate_variational_metrics():
    ag.manual_seed(18)
    model = VariationalAutoencoder(784, (32,), 4).eval()
    with ag.no_grad():
        metrics = ae_tasks.evaluate_variational(model, loader())
        again = ae_tasks.evaluate_variational(model, loader())
    assert metrics == again
    np.testing.assert_allclose(metrics["neg_elbo"], metrics["reconstruction"] + metrics["kl"], rtol=1e-12)
    assert metrics["loss"] == metrics["neg_elbo"] and metrics["kl"] > 0


def test_pictures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    ag.manual_seed(19)
    x, labels = images(30, seed=4), np.arange(30) % 10
    written = {}
    for name, model in [("dae", DenoisingAutoencoder((784, 16, 8, 16, 784))),
                        ("vae-2d", VariationalAutoencoder(784, (16,), 2, image_shape=(28, 28, 1)))]:
        paths = ae_tasks.write_pictures(model, x, labels, str(tmp_path / name), name)
        assert model.training  # restored
        written[name] = sorted(p.rsplit("/", 1)[1] for p in paths)
        for path in paths:
            with open(path, "rb") as stream:
                assert stream.read(8) == b"\x89PNG\r\n\x1a\n"
    assert written == {"dae": ["reconstructions.png"],
                       "vae-2d": ["latent_scatter.png", "reconstructions.png", "samples.png"]}


def test_pictures_are_skipped_with_one_notice_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(plots, "pyplot", lambda: None)
    model = VariationalAutoencoder(784, (16,), 2)
    assert ae_tasks.write_pictures(model, images(10), np.arange(10), str(tmp_path)) == []
    output = capsys.readouterr().out
    assert output.count("\n") == 1 and "matplotlib is not installed" in output
    assert list(tmp_path.iterdir()) == []


def write_tiny_fashion_mnist(directory, train=64, test=30):
    """Fashion-MNIST-format IDX files of synthetic images, so the CLI runs without the data."""
    for split, count, seed in (("train", train, 20), ("test", test, 21)):
        images_name, labels_name = nn.data.FASHION_MNIST_FILES[split]
        pixels = (images(count, seed=seed)[..., 0] * 255).round().astype(np.uint8)
        nn.data.write_idx(str(directory / images_name), pixels)
        nn.data.write_idx(str(directory / labels_name), (np.arange(count) % 10).astype(np.uint8))


def test_cli_trains_vae_2d_and_draws_its_pictures(tmp_path, capsys):
    """End to end: 'autograd-core train vae-2d' on tiny data writes metrics, a checkpoint
    and (with matplotlib) the pictures; 'autograd-core evaluate --pictures' redraws them."""
    from nn.apps import cli
    data_dir, run_dir = tmp_path / "data", tmp_path / "run"
    data_dir.mkdir()
    write_tiny_fashion_mnist(data_dir)
    status = cli.main(["train", "vae-2d", "--epochs", "1", "--batch-size", "32", "--threads", "1",
                       "--data-dir", str(data_dir), "--no-download", "--no-progress", "--out", str(run_dir)])
    assert status == 0
    import json
    with open(run_dir / "metrics.json") as stream:
        epoch = json.load(stream)["epochs"][0]
    assert np.isfinite(epoch["test_neg_elbo"]) and epoch["test_kl"] > 0
    np.testing.assert_allclose(epoch["test_neg_elbo"], epoch["test_reconstruction"] + epoch["test_kl"])
    pictures = {"reconstructions.png", "samples.png", "latent_scatter.png"}
    has_matplotlib = plots.pyplot() is not None
    assert pictures <= {p.name for p in run_dir.iterdir()} or not has_matplotlib
    capsys.readouterr()
    redraw = tmp_path / "redraw"
    assert cli.main(["evaluate", "--checkpoint", str(run_dir / "checkpoint.npz"), "--data-dir", str(data_dir),
                     "--no-download", "--pictures", str(redraw)]) == 0
    output = capsys.readouterr().out
    assert "vae-2d (epoch 1) on 30 test images: test neg_elbo %.4f" % epoch["test_neg_elbo"] in output
    if has_matplotlib:
        assert {p.name for p in redraw.iterdir()} == pictures
