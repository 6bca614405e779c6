"""Tasks: how to train and judge a kind of model on a batch of Fashion-MNIST
``(images [N, 28, 28, 1] float32, labels [N] int64)``. Classification is defined here;
the autoencoders' tasks are in :mod:`nn.apps.ae_tasks`, and :mod:`nn.apps.models`
registers them all.

A task for an autoencoder that ignores the labels, for example::

    def reconstruction_loss(model, images, labels):
        return nn.functional.mse_loss(model(images), images)

    def evaluate_reconstruction(model, loader):       # runs in eval mode under no_grad
        ...
        return {"mse": mean_squared_error}

    Task("reconstruction", reconstruction_loss, evaluate_reconstruction, metric="mse",
         higher_is_better=False)
"""
from dataclasses import dataclass

import numpy as np

import autograd_core

from ..functional import cross_entropy

__all__ = ["Task", "classification_task"]


@dataclass(frozen=True)
class Task:
    """How to train and evaluate a kind of model.

    ``loss(model, images, labels) -> Tensor`` (scalar) is minimised during training, on
    Tensors of a batch. ``evaluate(model, loader) -> dict[str, float]`` computes metrics
    over a :class:`nn.data.DataLoader` of numpy ``(images, labels)``; the trainer calls it in
    eval mode and under ``no_grad``. ``metric`` names the headline entry of that dict and
    ``higher_is_better`` its direction.

    ``pictures`` (optional) is called once after training as
    ``pictures(model, test_images, test_labels, run_directory, model_name) -> [paths]`` to
    draw task-specific figures (reconstructions, samples...). The trainer calls it only when
    matplotlib is installed (it prints the one "skipped" notice otherwise).
    """

    name: str
    loss: object
    evaluate: object
    metric: str
    higher_is_better: bool = True
    pictures: object = None


def _classification_loss(model, images, labels):
    return cross_entropy(model(images), labels)


def _evaluate_classification(model, loader):
    correct = 0
    total_loss = 0.0
    count = 0
    for images, labels in loader:
        logits = model(autograd_core.from_numpy(images))
        total_loss += float(cross_entropy(logits, labels, reduction="sum").data)
        correct += int(np.count_nonzero(logits.data.argmax(axis=1) == labels))
        count += len(labels)
    if count == 0:
        raise ValueError("classification evaluation: the loader yielded no examples")
    return {"accuracy": correct / count, "loss": total_loss / count}


classification_task = Task("classification", _classification_loss, _evaluate_classification, metric="accuracy")
