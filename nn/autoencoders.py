"""The lecture's three autoencoders: stacked (optionally with tied weights), denoising,
and variational.

All three take images of any shape ``[N, ...]`` whose trailing dimensions hold
``input_size`` values (Fashion-MNIST: ``[N, 28, 28, 1]`` or ``[N, 784]``) and flatten them
internally. Their decoders end in a Linear layer that gives *logits*: pixel intensities
in [0, 1] are modelled as Bernoulli probabilities, so the reconstruction loss is the
sigmoid cross-entropy summed over pixels (nats per image), and ``reconstruct`` /
``sample`` apply the sigmoid to give images.

    model = StackedAutoencoder((784, 300, 150, 300, 784), tie_weights=True)
    loss = model.loss(images)            # mean over the batch of per-image BCE sums
    vae = VariationalAutoencoder(784, (512,), latent_size=20)
    loss = vae.loss(images)              # negative ELBO, nats per image
    samples = vae.sample(16)             # [16, 784] pixel probabilities
"""
import numpy as np

import autograd_core
from autograd_core import Tensor

from . import functional as F
from .layers import Linear
from .losses import binary_cross_entropy_with_logits, gaussian_kl, mse_loss
from .module import Module, ModuleList, Parameter
from . import init

__all__ = ["StackedAutoencoder", "DenoisingAutoencoder", "VariationalAutoencoder", "TiedLinear",
           "reparameterize", "reconstruction_loss"]

_ACTIVATIONS = {
    "elu": F.elu,
    "relu": F.relu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
}
_RECONSTRUCTIONS = ("bce", "mse")


def _activation(owner, name):
    if name not in _ACTIVATIONS:
        raise ValueError("%s: activation must be one of %s, got %r" % (owner, sorted(_ACTIVATIONS), name))
    return _ACTIVATIONS[name]


def _positive_sizes(owner, name, sizes):
    sizes = tuple(sizes)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError("%s: %s must be positive ints, got %r" % (owner, name, sizes))
    return tuple(int(size) for size in sizes)


def _flatten(owner, x, input_size):
    """x [N, ...] with input_size trailing values -> [N, input_size]."""
    if not isinstance(x, Tensor):
        raise TypeError("%s: expected a Tensor of images [N, ...], got %s" % (owner, type(x).__name__))
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != input_size:
        raise ValueError("%s: expected input [N, ...] with %d values per example (e.g. [N, 28, 28, 1] "
                         "for 784), got shape %s" % (owner, input_size, tuple(x.shape)))
    return x if x.ndim == 2 else x.reshape(x.shape[0], input_size)


def reconstruction_loss(output, target, kind="bce"):
    """Per-example reconstruction error, averaged over the batch.

    output: [N, ...] logits ('bce') or values ('mse'); target: same shape, in [0, 1] for
    'bce'. 'bce' is the sigmoid cross-entropy summed over the trailing dimensions
    (nats per example), 'mse' the squared error summed the same way. Returns a scalar.
    """
    if kind not in _RECONSTRUCTIONS:
        raise ValueError("reconstruction_loss: kind must be one of %s, got %r" % (_RECONSTRUCTIONS, kind))
    if not isinstance(output, Tensor) or output.ndim < 1:
        raise ValueError("reconstruction_loss: output must be a Tensor [N, ...], got %r" % (output,))
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.shape != output.shape:
        raise ValueError("reconstruction_loss: output has shape %s but target has shape %s; expected the same"
                         % (tuple(output.shape), target_array.shape))
    # the target is data, never a thing to differentiate: pass its array
    target_array = target_array.astype(output.dtype, copy=False)
    if kind == "bce":
        total = binary_cross_entropy_with_logits(output, target_array, reduction="sum")
    else:
        total = mse_loss(output, target_array, reduction="sum")
    return total * (1.0 / output.shape[0])


class TiedLinear(Module):
    """The transpose of a Linear layer with its own bias: y = x @ source.weight + bias.

    x: [..., source.out_features] -> y: [..., source.in_features]. ``weight`` is the very
    Parameter object of ``source`` (not a copy), so gradients from both layers
    accumulate into it and ``parameters()`` lists it once.
    """

    def __init__(self, source):
        super().__init__()
        if not isinstance(source, Linear):
            raise TypeError("TiedLinear: source must be a Linear layer, got %s" % type(source).__name__)
        self.in_features, self.out_features = source.out_features, source.in_features
        self.weight = source.weight  # the same Parameter: one tensor, two uses
        self.bias = Parameter(np.zeros(self.out_features, dtype=source.weight.dtype))

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError("TiedLinear(%d -> %d): expected input [..., %d], got shape %s"
                             % (self.in_features, self.out_features, self.in_features, tuple(x.shape)))
        return autograd_core.matmul(x, self.weight) + self.bias

    def extra_repr(self):
        return "in_features=%d, out_features=%d, tied" % (self.in_features, self.out_features)


class StackedAutoencoder(Module):
    """A symmetric stack of Linear layers, e.g. 784-300-150-300-784, with a hidden
    activation (ELU by default) after every layer but the last.

    ``layer_sizes``: the full symmetric list, input to output (odd length >= 3, a
    palindrome); its middle entry is the code size. ``tie_weights=True`` makes each decoder
    layer use the transpose of its mirror encoder layer's weight (the same Parameter), so
    the model has about half the parameters; decoder biases stay separate.
    ``reconstruction``: 'bce' (the output is logits; ``reconstruct`` applies the sigmoid)
    or 'mse' (the output is the reconstruction itself).

    forward(x [N, ...]) -> output of x's shape (logits for 'bce').
    """

    def __init__(self, layer_sizes=(784, 300, 150, 300, 784), tie_weights=False, activation="elu",
                 reconstruction="bce", dtype=np.float32):
        super().__init__()
        owner = type(self).__name__
        sizes = _positive_sizes(owner, "layer_sizes", layer_sizes)
        if len(sizes) < 3 or len(sizes) % 2 == 0 or sizes != sizes[::-1]:
            raise ValueError("%s: layer_sizes must be symmetric with an odd number (>= 3) of entries, "
                             "e.g. (784, 300, 150, 300, 784); got %r" % (owner, sizes))
        if reconstruction not in _RECONSTRUCTIONS:
            raise ValueError("%s: reconstruction must be one of %s, got %r"
                             % (owner, _RECONSTRUCTIONS, reconstruction))
        self.layer_sizes = sizes
        self.input_size = sizes[0]
        self.code_size = sizes[len(sizes) // 2]
        self.tie_weights = bool(tie_weights)
        self.activation = activation
        self._activation = _activation(owner, activation)
        self.reconstruction = reconstruction
        middle = len(sizes) // 2
        self.encoder = ModuleList([Linear(sizes[i], sizes[i + 1], dtype=dtype) for i in range(middle)])
        if self.tie_weights:
            # decoder layer j mirrors encoder layer middle - 1 - j
            self.decoder = ModuleList([TiedLinear(self.encoder[middle - 1 - j]) for j in range(middle)])
        else:
            self.decoder = ModuleList([Linear(sizes[i], sizes[i + 1], dtype=dtype)
                                       for i in range(middle, len(sizes) - 1)])

    def encode(self, x):
        """x [N, ...] -> codes [N, code_size] (after the hidden activation)."""
        h = _flatten(type(self).__name__, x, self.input_size)
        for layer in self.encoder:
            h = self._activation(layer(h))
        return h

    def decode(self, codes):
        """codes [N, code_size] -> output [N, input_size] (logits for 'bce')."""
        h = codes
        last = len(self.decoder) - 1
        for index, layer in enumerate(self.decoder):
            h = layer(h)
            if index != last:
                h = self._activation(h)
        return h

    def forward(self, x):
        """x [N, ...] -> output of x's shape (logits for 'bce')."""
        return self.decode(self.encode(x)).reshape(x.shape)

    def _as_images(self, output):
        return F.sigmoid(output) if self.reconstruction == "bce" else output

    def reconstruct(self, x):
        """x [N, ...] -> reconstructed images of x's shape (pixel probabilities for 'bce')."""
        return self._as_images(self(x))

    def loss(self, x):
        """Reconstruction loss of x [N, ...], summed over pixels, averaged over the batch."""
        return reconstruction_loss(self(x), x, self.reconstruction)

    def extra_repr(self):
        return "layer_sizes=%s, tie_weights=%s, activation=%r, reconstruction=%r" % (
            "-".join(map(str, self.layer_sizes)), self.tie_weights, self.activation, self.reconstruction)


class DenoisingAutoencoder(StackedAutoencoder):
    """A StackedAutoencoder that learns to undo corruption of its input.

    In training mode, ``forward`` corrupts its input first: ``noise='gaussian'`` adds
    N(0, noise_level**2) noise to every pixel; ``noise='dropout'`` zeroes each pixel with
    probability ``noise_level`` (inverted dropout: survivors are scaled by
    1 / (1 - noise_level)). In eval mode the input passes unchanged. The loss always
    compares the output with the *clean* input. Noise comes from ``generator`` (a numpy
    Generator) or, by default, the one ``nn.init.manual_seed`` seeds.
    """

    def __init__(self, layer_sizes=(784, 300, 150, 300, 784), noise="gaussian", noise_level=0.2,
                 tie_weights=False, activation="elu", reconstruction="bce", dtype=np.float32,
                 generator=None):
        super().__init__(layer_sizes, tie_weights, activation, reconstruction, dtype)
        owner = type(self).__name__
        if noise not in ("gaussian", "dropout"):
            raise ValueError("%s: noise must be 'gaussian' or 'dropout', got %r" % (owner, noise))
        if isinstance(noise_level, bool) or not isinstance(noise_level, (int, float)) or noise_level < 0:
            raise ValueError("%s: noise_level must be a non-negative number, got %r" % (owner, noise_level))
        if noise == "dropout" and noise_level >= 1:
            raise ValueError("%s: a dropout noise_level is a probability in [0, 1), got %r" % (owner, noise_level))
        self.noise = noise
        self.noise_level = float(noise_level)
        self.generator = generator

    def corrupt(self, x):
        """x [N, ...] with noise applied, whatever the mode (e.g. to show noisy inputs)."""
        if self.noise == "dropout":
            return F.dropout(x, self.noise_level, True, self.generator)
        rng = init.get_generator() if self.generator is None else self.generator
        noise = rng.standard_normal(x.shape).astype(x.dtype, copy=False)
        noise *= x.dtype.type(self.noise_level)
        return x + Tensor(noise)

    def forward(self, x):
        """x [N, ...] -> output of x's shape; x is corrupted first in training mode."""
        if self.training:
            x = self.corrupt(x)
        return super().forward(x)

    def loss(self, x):
        """Reconstruction loss of the clean x from (in training) its corrupted version."""
        return reconstruction_loss(self(x), x, self.reconstruction)

    def extra_repr(self):
        return super().extra_repr() + ", noise=%r, noise_level=%s" % (self.noise, self.noise_level)


def reparameterize(mu, logvar, noise):
    """z = mu + exp(0.5 * logvar) * noise: a sample of N(mu, exp(logvar)) that is a
    differentiable function of mu and logvar (the noise is a constant).

    mu, logvar: [N, latent] Tensors; noise: [N, latent] array or Tensor of N(0, 1) draws.
    """
    noise = noise.data if isinstance(noise, Tensor) else np.asarray(noise)
    if noise.shape != mu.shape or logvar.shape != mu.shape:
        raise ValueError("reparameterize: mu %s, logvar %s and noise %s must have the same shape"
                         % (tuple(mu.shape), tuple(logvar.shape), noise.shape))
    return mu + (logvar * 0.5).exp() * noise.astype(mu.dtype, copy=False)


class VariationalAutoencoder(Module):
    """A variational autoencoder with a diagonal Gaussian posterior and Bernoulli pixels.

    Encoder: ``input_size`` -> ``hidden_sizes`` (each followed by the activation) -> two
    Linear heads giving the mean and the log-variance of q(z | x), ``latent_size`` each.
    Decoder: ``latent_size`` -> reversed ``hidden_sizes`` -> ``input_size`` logits.
    The prior is N(0, I). ``image_shape`` (e.g. (28, 28, 1)) shapes what ``sample``
    returns; by default samples are flat [n, input_size].

    forward(x [N, ...]) -> (logits of x's shape, mu [N, latent], logvar [N, latent]), with
    z drawn by reparameterization from ``generator`` (default: nn.init's generator).
    """

    def __init__(self, input_size=784, hidden_sizes=(512,), latent_size=20, activation="elu",
                 image_shape=None, dtype=np.float32, generator=None):
        super().__init__()
        owner = type(self).__name__
        (self.input_size,) = _positive_sizes(owner, "input_size", (input_size,))
        self.hidden_sizes = _positive_sizes(owner, "hidden_sizes", hidden_sizes)
        (self.latent_size,) = _positive_sizes(owner, "latent_size", (latent_size,))
        if image_shape is not None:
            image_shape = _positive_sizes(owner, "image_shape", image_shape)
            if int(np.prod(image_shape)) != self.input_size:
                raise ValueError("%s: image_shape %s holds %d values, expected input_size=%d"
                                 % (owner, image_shape, int(np.prod(image_shape)), self.input_size))
        self.image_shape = image_shape
        self.activation = activation
        self._activation = _activation(owner, activation)
        self.generator = generator
        widths = (self.input_size,) + self.hidden_sizes
        self.encoder = ModuleList([Linear(widths[i], widths[i + 1], dtype=dtype)
                                   for i in range(len(self.hidden_sizes))])
        self.mean = Linear(widths[-1], self.latent_size, dtype=dtype)
        self.logvar = Linear(widths[-1], self.latent_size, dtype=dtype)
        widths = (self.latent_size,) + self.hidden_sizes[::-1] + (self.input_size,)
        self.decoder = ModuleList([Linear(widths[i], widths[i + 1], dtype=dtype)
                                   for i in range(len(widths) - 1)])

    def _rng(self):
        return init.get_generator() if self.generator is None else self.generator

    def encode(self, x):
        """x [N, ...] -> (mu, logvar), each [N, latent_size]: the posterior q(z | x)."""
        h = _flatten(type(self).__name__, x, self.input_size)
        for layer in self.encoder:
            h = self._activation(layer(h))
        return self.mean(h), self.logvar(h)

    def decode(self, z):
        """z [N, latent_size] -> logits [N, input_size] of the pixels' Bernoulli means."""
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError("%s.decode: expected codes [N, %d], got %s"
                             % (type(self).__name__, self.latent_size,
                                tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__))
        h = z
        last = len(self.decoder) - 1
        for index, layer in enumerate(self.decoder):
            h = layer(h)
            if index != last:
                h = self._activation(h)
        return h

    def reparameterize(self, mu, logvar, noise=None):
        """z = mu + exp(0.5 logvar) * noise; noise [N, latent] defaults to fresh N(0, 1) draws."""
        if noise is None:
            noise = self._rng().standard_normal(mu.shape)
        return reparameterize(mu, logvar, noise)

    def forward(self, x, noise=None):
        """x [N, ...] -> (logits of x's shape, mu, logvar); ``noise`` fixes the draw of z."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, noise)
        logits = self.decode(z)
        # flat images need no reshape node (the benchmark's and the CLI's [N, 784])
        return (logits if logits.shape == x.shape else logits.reshape(x.shape)), mu, logvar

    def loss_terms(self, x, noise=None):
        """(reconstruction, kl): the two parts of the negative ELBO of x [N, ...], each a
        scalar averaged over the batch; reconstruction is the BCE summed over pixels of a
        one-sample estimate, kl is KL(q(z | x) || N(0, I)) in closed form."""
        logits, mu, logvar = self(x, noise)
        return reconstruction_loss(logits, x, "bce"), gaussian_kl(mu, logvar, reduction="mean")

    def loss(self, x, noise=None):
        """Negative ELBO of x [N, ...] in nats per example (a one-sample estimate)."""
        reconstruction, kl = self.loss_terms(x, noise)
        return reconstruction + kl

    def reconstruct(self, x, sample=False):
        """x [N, ...] -> pixel probabilities of x's shape, decoded from the posterior mean
        (or from a sample of z with ``sample=True``)."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if sample else mu
        return F.sigmoid(self.decode(z)).reshape(x.shape)

    def sample(self, n, generator=None):
        """n new images from the prior: z ~ N(0, I), decoded to pixel probabilities,
        [n, *image_shape] (or [n, input_size]). Computed without a graph."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError("%s.sample: n must be a positive int, got %r" % (type(self).__name__, n))
        rng = self._rng() if generator is None else generator
        dtype = self.mean.weight.dtype
        z = Tensor(rng.standard_normal((int(n), self.latent_size)).astype(dtype))
        with autograd_core.no_grad():
            images = F.sigmoid(self.decode(z))
        shape = (int(n),) + (self.image_shape or (self.input_size,))
        return images.reshape(shape)

    def extra_repr(self):
        return "input_size=%d, hidden_sizes=%s, latent_size=%d, activation=%r" % (
            self.input_size, self.hidden_sizes, self.latent_size, self.activation)
