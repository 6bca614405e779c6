"""The autoencoders on the command line: their tasks, builders and pictures.

Defines the tasks ``reconstruction`` and ``variational`` and the builders of the models

* ``ae``: StackedAutoencoder 784-300-150-300-784, ELU, tied weights;
* ``dae``: DenoisingAutoencoder of the same shape, Gaussian noise of level 0.2;
* ``vae``: VariationalAutoencoder 784-512-20, ELU;
* ``vae-2d``: VariationalAutoencoder 784-512-2, whose codes can be drawn in the plane,

which :mod:`nn.apps.models` registers, so that ``autograd-core train vae`` trains them.
Reported test metrics are in nats per image: ``loss`` is the sigmoid cross-entropy of the
reconstruction summed over the 784 pixels (for ``vae``: the negative ELBO, also reported
as ``neg_elbo``, with its parts ``reconstruction`` and ``kl``), ``mse`` the mean squared
error per pixel of the reconstructed image.

Pictures (PNG, need matplotlib; without it one notice says they were skipped), written
by :func:`write_pictures` into the run directory:

* ``reconstructions.png``: one test image of each class above its reconstruction (for
  ``dae`` the noisy input in between);
* ``samples.png`` (VAE): images decoded from codes drawn from the prior N(0, I);
* ``latent_scatter.png`` (VAE with a 2-D latent): the test images' posterior means,
  coloured by class.

``autograd-core train`` draws them after training (the tasks' ``pictures`` hook), and
for any checkpoint they can be (re)drawn with::

    autograd-core evaluate --checkpoint runs/vae/checkpoint.npz --pictures [DIR]
"""
import os

import numpy as np

import autograd_core

from .. import data
from ..autoencoders import DenoisingAutoencoder, StackedAutoencoder, VariationalAutoencoder, reconstruction_loss
from . import plots
from .tasks import Task

__all__ = ["evaluate_reconstruction", "evaluate_variational", "write_pictures",
           "build_ae", "build_dae", "build_vae", "build_vae_2d", "reconstruction_task", "variational_task"]

IMAGE_SHAPE = (28, 28, 1)
IMAGE_PIXELS = 28 * 28
# Evaluation draws its own noise (VAE codes, DAE corruption) from this seed, so that test
# metrics are reproducible and evaluating never disturbs the training's random stream.
EVALUATION_SEED = 1234
SKIPPED_NOTICE = ("matplotlib is not installed: skipped the autoencoder pictures "
                  "(pip install 'autograd-core[plot]')")


# ---------------------------------------------------------------------------------------
# Losses and metrics


def _autoencoder_loss(model, images, labels):
    # labels are ignored: the images are their own targets
    return model.loss(images)


def _squared_error_sum(reconstruction, images):
    difference = reconstruction.data.astype(np.float64) - images.astype(np.float64)
    return float(np.sum(difference * difference))


def evaluate_reconstruction(model, loader):
    """Test metrics of a (denoising) stacked autoencoder over a loader of (images, labels):
    ``loss`` (BCE nats per image), ``mse`` (per pixel); for a DenoisingAutoencoder also
    ``denoising_loss``, the BCE of reconstructing clean images from corrupted ones."""
    denoising = isinstance(model, DenoisingAutoencoder)
    rng = np.random.default_rng(EVALUATION_SEED)
    saved_generator = getattr(model, "generator", None)
    totals = {"loss": 0.0, "mse": 0.0, "denoising_loss": 0.0}
    count = 0
    try:
        if denoising:
            model.generator = rng
        for images, _ in loader:
            x = autograd_core.from_numpy(np.ascontiguousarray(images))
            output = model(x)
            n = len(images)
            totals["loss"] += float(reconstruction_loss(output, images, model.reconstruction).data) * n
            reconstruction = output.sigmoid() if model.reconstruction == "bce" else output
            totals["mse"] += _squared_error_sum(reconstruction, images)
            if denoising:
                noisy_output = StackedAutoencoder.forward(model, model.corrupt(x))
                totals["denoising_loss"] += float(
                    reconstruction_loss(noisy_output, images, model.reconstruction).data) * n
            count += n
    finally:
        if denoising:
            model.generator = saved_generator
    if count == 0:
        raise ValueError("reconstruction evaluation: the loader yielded no examples")
    metrics = {"loss": totals["loss"] / count, "mse": totals["mse"] / (count * model.input_size)}
    if denoising:
        metrics["denoising_loss"] = totals["denoising_loss"] / count
    return metrics


def evaluate_variational(model, loader):
    """Test metrics of a VAE: ``neg_elbo`` (= ``loss``), its parts ``reconstruction`` and
    ``kl`` (nats per image; one sample of z per image, drawn from a fixed seed) and
    ``mse`` (per pixel) of the images decoded from the posterior means."""
    rng = np.random.default_rng(EVALUATION_SEED)
    totals = {"reconstruction": 0.0, "kl": 0.0, "mse": 0.0}
    count = 0
    for images, _ in loader:
        x = autograd_core.from_numpy(np.ascontiguousarray(images))
        n = len(images)
        noise = rng.standard_normal((n, model.latent_size))
        reconstruction, kl = model.loss_terms(x, noise)
        totals["reconstruction"] += float(reconstruction.data) * n
        totals["kl"] += float(kl.data) * n
        totals["mse"] += _squared_error_sum(model.reconstruct(x), images)
        count += n
    if count == 0:
        raise ValueError("variational evaluation: the loader yielded no examples")
    reconstruction, kl = totals["reconstruction"] / count, totals["kl"] / count
    return {"neg_elbo": reconstruction + kl, "loss": reconstruction + kl, "reconstruction": reconstruction,
            "kl": kl, "mse": totals["mse"] / (count * model.input_size)}


# ---------------------------------------------------------------------------------------
# Pictures


def _one_per_class(labels, classes=10):
    """Index of the first example of each class present (in class order)."""
    return [int(np.flatnonzero(labels == c)[0]) for c in range(classes) if np.any(labels == c)]


def write_pictures(model, images, labels, directory, name=None):
    """Draw the pictures of ``model`` (see the module docstring) from test ``images``
    [N, 28, 28, 1] and ``labels`` [N] into ``directory``. Returns the paths written; an
    empty list (and one printed notice) when matplotlib is not installed."""
    plt = plots.pyplot()
    if plt is None:
        print(SKIPPED_NOTICE)
        return []
    os.makedirs(directory, exist_ok=True)
    name = name or type(model).__name__
    was_training = model.training
    model.eval()
    paths = []
    rng = np.random.default_rng(EVALUATION_SEED)
    try:
        with autograd_core.no_grad():
            chosen = _one_per_class(labels)
            inputs = np.ascontiguousarray(images[chosen])
            x = autograd_core.from_numpy(inputs)
            rows, row_names = [inputs], ["input"]
            if isinstance(model, DenoisingAutoencoder):
                saved_generator, model.generator = model.generator, rng
                try:
                    noisy = model.corrupt(x)
                finally:
                    model.generator = saved_generator
                rows.append(np.clip(noisy.data, 0.0, 1.0))
                row_names.append("noisy (%s %.2g)" % (model.noise, model.noise_level))
                rows.append(model.reconstruct(noisy).data)
            else:
                rows.append(model.reconstruct(x).data)
            row_names.append("reconstruction")
            paths.append(plots.image_grid(plt, os.path.join(directory, "reconstructions.png"), rows, row_names,
                                          "%s: test images and their reconstructions" % name))
            if isinstance(model, VariationalAutoencoder):
                samples = model.sample(64, generator=rng).data.reshape(8, 8, 28, 28)
                paths.append(plots.image_grid(plt, os.path.join(directory, "samples.png"), list(samples),
                                              [""] * 8, "%s: samples decoded from z ~ N(0, I)" % name))
                if model.latent_size == 2:
                    paths.append(_latent_scatter(plt, model, images, labels, directory, name))
    finally:
        model.train(was_training)
    return paths


def _latent_scatter(plt, model, images, labels, directory, name, batch_size=1000):
    codes = []
    for start in range(0, len(images), batch_size):
        mu, _ = model.encode(autograd_core.from_numpy(np.ascontiguousarray(images[start:start + batch_size])))
        codes.append(mu.data)
    return plots.scatter_by_class(plt, os.path.join(directory, "latent_scatter.png"), np.concatenate(codes), labels,
                                  data.FASHION_MNIST_CLASSES, ("z[0] (posterior mean)", "z[1] (posterior mean)"),
                                  "%s: test images' codes by class" % name)


# ---------------------------------------------------------------------------------------
# Models and tasks (nn.apps.models registers them)


def build_ae():
    """784-300-150-300-784, ELU, tied weights (the lecture's stacked autoencoder)."""
    return StackedAutoencoder((784, 300, 150, 300, 784), tie_weights=True)


def build_dae():
    """784-300-150-300-784, ELU, Gaussian noise of standard deviation 0.2 in training."""
    return DenoisingAutoencoder((784, 300, 150, 300, 784), noise="gaussian", noise_level=0.2)


def build_vae():
    """784-512-20 encoder, 20-512-784 decoder, ELU."""
    return VariationalAutoencoder(784, (512,), 20, image_shape=IMAGE_SHAPE)


def build_vae_2d():
    """784-512-2: a two-dimensional latent space, drawn as a scatter of the test codes."""
    return VariationalAutoencoder(784, (512,), 2, image_shape=IMAGE_SHAPE)


reconstruction_task = Task("reconstruction", _autoencoder_loss, evaluate_reconstruction, metric="loss",
                           higher_is_better=False, pictures=write_pictures)
variational_task = Task("variational", _autoencoder_loss, evaluate_variational, metric="neg_elbo",
                        higher_is_better=False, pictures=write_pictures)
