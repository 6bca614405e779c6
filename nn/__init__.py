"""nn: modules, layers, losses, optimizers and training tools on the public autograd_core API.

    import nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.functional.cross_entropy(model(x), labels)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
"""
from . import functional, init, losses, optim
from .init import manual_seed
from .layers import (AvgPool2d, Conv2d, Dropout, ELU, Flatten, Identity, LeakyReLU, Linear, LogSoftmax,
                     MaxPool2d, ReLU, Sigmoid, Softmax, Tanh)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, GaussianKLLoss, MSELoss
from .module import IncompatibleKeys, Module, ModuleList, Parameter, Sequential
from . import checkpoint, data, models

# Later parts append their imports below (recurrent cells, autoencoders, models, ...).
from . import autoencoders
from .autoencoders import DenoisingAutoencoder, StackedAutoencoder, TiedLinear, VariationalAutoencoder
from . import recurrent  # nn.text and nn.sequence_tasks import on demand (python -m runs them)
from .recurrent import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
