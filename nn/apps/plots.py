"""The figures the commands draw, as PNG files. matplotlib is an optional extra
(``pip install 'autograd-core[plot]'``): :func:`pyplot` returns None without it and the
callers print one notice instead of drawing."""
import numpy as np

__all__ = ["pyplot", "training_curve", "image_grid", "mosaic", "scatter_by_class"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def training_curve(plt, path, history, metric, title):
    """Write the training curve: train (and test) loss and the test ``metric`` per epoch.

    ``history``: the per-epoch entries of metrics.json (``epoch``, ``train_loss``,
    ``test_<metric>``, optionally ``test_loss``). Returns ``path``."""
    epochs = [entry["epoch"] for entry in history]
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axis.plot(epochs, [entry["train_loss"] for entry in history], marker="o", label="train")
    if all("test_loss" in entry for entry in history):
        loss_axis.plot(epochs, [entry["test_loss"] for entry in history], marker="o", label="test")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.legend()
    metric_axis.plot(epochs, [entry["test_" + metric] for entry in history], marker="o", color="C2")
    metric_axis.set_xlabel("epoch")
    metric_axis.set_ylabel("test " + metric)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def mosaic(rows, pad=2):
    """rows: list of [n, height, width(, 1)] arrays -> one grey image [rows * (height + pad)
    + pad, n * (width + pad) + pad], the rows stacked, white between the images."""
    height, width = rows[0].shape[1:3]
    n = rows[0].shape[0]
    canvas = np.ones((len(rows) * (height + pad) + pad, n * (width + pad) + pad), dtype=np.float32)
    for r, row in enumerate(rows):
        row = np.asarray(row).reshape(n, height, width)
        for c in range(n):
            top, left = pad + r * (height + pad), pad + c * (width + pad)
            canvas[top:top + height, left:left + width] = row[c]
    return canvas


def image_grid(plt, path, rows, row_names, title):
    """Write rows of images in [0, 1] (each [n, height, width(, 1)]) as one labelled grid.
    Returns ``path``."""
    canvas = mosaic(rows)
    figure, axis = plt.subplots(figsize=(1.0 + 0.55 * rows[0].shape[0], 0.4 + 0.6 * len(rows)))
    axis.imshow(canvas, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    height = rows[0].shape[1] + 2
    axis.set_yticks([2 + height * r + (height - 2) / 2 for r in range(len(rows))])
    axis.set_yticklabels(row_names)
    axis.tick_params(length=0)
    axis.set_xticks([])
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def scatter_by_class(plt, path, points, labels, class_names, axis_names, title):
    """Write a scatter of 2-D ``points`` [N, 2] coloured by ``labels`` [N] (one colour and
    legend entry per name in ``class_names``). Returns ``path``."""
    figure, axis = plt.subplots(figsize=(7, 6))
    for c, class_name in enumerate(class_names):
        chosen = labels == c
        axis.scatter(points[chosen, 0], points[chosen, 1], s=2, alpha=0.6, color=plt.cm.tab10(c), label=class_name)
    axis.set_xlabel(axis_names[0])
    axis.set_ylabel(axis_names[1])
    axis.set_title(title, fontsize=10)
    axis.legend(markerscale=5, fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
