"""The applications built on the ``nn`` library: what the ``autograd-core`` command runs.

Each module imports only the library and the modules listed above it (nothing points up,
nothing imports in a circle):

* ``arguments``: the argparse pieces every command shares (types, data and thread options);
* ``plots``: matplotlib on the file-only backend, the training curve, image grids;
* ``trainer``: the one training loop (optimisation step, epochs, evaluation) and the run
  directory of ``train`` (metrics.json, an atomic checkpoint per epoch, curve.png);
* ``tasks``: :class:`~nn.apps.tasks.Task` (how to train and judge a kind of model) and
  classification;
* ``ae_tasks``, ``sequence_tasks``, ``text``: the autoencoders' tasks and pictures, the
  sequence models and tasks, the character language model;
* ``models``: the registry, which declares every model and task the CLI can train;
* ``cli``: the ``autograd-core`` command (also ``python -m nn``).

The library (``nn.Module``, layers, losses, optim, data, checkpoint, ...) imports nothing
from here. The old names ``nn.models``, ``nn.cli``, ``nn.text``, ``nn.ae_tasks`` and
``nn.sequence_tasks`` still import these modules.
"""
