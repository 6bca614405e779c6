"""nn: modules, layers, losses, optimizers and training tools on the public autograd_core API.

    import nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.functional.cross_entropy(model(x), labels)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

This package is the library; the applications built on it (the model registry, the
trainer, the ``autograd-core`` command, the lecture's tasks) are in ``nn.apps``, which the
library never imports.
"""
import importlib
import importlib.abc
import importlib.util
import sys

from . import functional, init, losses, optim
from .init import manual_seed
from .layers import (AvgPool2d, BCEWithLogitsLoss, Conv2d, CrossEntropyLoss, Dropout, ELU, Flatten, GaussianKLLoss,
                     Identity, LeakyReLU, Linear, LogSoftmax, MaxPool2d, MSELoss, ReLU, Sigmoid, Softmax, Tanh)
# losses (issue 14)
from .layers import (BCELoss, CosineEmbeddingLoss, HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss,
                     MarginRankingLoss, MultiLabelSoftMarginLoss, NLLLoss, PoissonNLLLoss, SmoothL1Loss,
                     TripletMarginLoss)
from .module import IncompatibleKeys, Module, ModuleList, Parameter, Sequential
from . import checkpoint, data
from . import autoencoders
from .autoencoders import DenoisingAutoencoder, StackedAutoencoder, TiedLinear, VariationalAutoencoder
from . import recurrent
from .recurrent import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
# issue 14, weights in the ecosystem's format: nn.utils.load_torch_state_dict / torch_state_dict
from . import utils

# attention, LayerNorm and the Transformer layers (issue 14, item 2)
from . import attention, layer_norm, transformer
from .attention import MultiheadAttention
from .layer_norm import LayerNorm
from .transformer import TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer

# ---- layers (issue 14) ----
from .layers import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AlphaDropout,
                     AvgPool1d, CELU, Conv1d, ConvTranspose2d, Dropout1d, Dropout2d, GELU, GLU, Hardsigmoid,
                     Hardswish, Hardtanh, LogSigmoid, MaxPool1d, Mish, PReLU, ReLU6, SELU, SiLU, Softmin,
                     Softplus, Softsign, Unflatten, Upsample)

# normalization layers (issue 14)
from . import normalization
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
                            LocalResponseNorm)

# -- issue 14, optimizers and schedules: nn.utils (clip_grad_*), nn.lr_scheduler (= nn.optim.lr_scheduler)
from . import clip, lr_scheduler, utils
# -- end of optimizers and schedules

# -- issue 14 leftovers: 3-D and transposed conv layers, 3-D pooling, the whole Transformer
from .layers import AvgPool3d, Conv3d, ConvTranspose1d, ConvTranspose3d, MaxPool3d
from .transformer import Transformer, TransformerDecoder
# -- end of issue 14 leftovers

# The applications used to live here as nn.models, nn.cli, ...; those names still import
# (and are) the modules of nn.apps, loaded only when first asked for.
_MOVED_TO_APPS = ("models", "cli", "text", "ae_tasks", "sequence_tasks")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``nn.models`` etc. as their ``nn.apps`` modules (the same module objects)."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in _MOVED_TO_APPS:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(__name__ + ".apps." + spec.name.rpartition(".")[2])

    def exec_module(self, module):
        pass  # it already ran as nn.apps.X

    def get_code(self, fullname):
        # ``python -m nn.text ...`` runs nn.apps.text as the script
        target = __name__ + ".apps." + fullname.rpartition(".")[2]
        return compile("import runpy\nrunpy.run_module(%r, run_name='__main__', alter_sys=True)\n" % target,
                       "<%s moved to %s>" % (fullname, target), "exec")


# First in line: these five names must resolve to nn.apps even where a finder further on
# (an editable install of an older tree, say) would still find the old files.
if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


def __getattr__(name):
    if name in _MOVED_TO_APPS:
        return importlib.import_module(__name__ + "." + name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
