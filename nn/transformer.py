"""TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
TransformerDecoder and Transformer with torch.nn's arguments and submodule names
(self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2; multihead_attn,
norm3, dropout3 in the decoder layer; layers.N and norm in the stacks; encoder and decoder
in the Transformer), so a torch state dict loads by name and gives torch's outputs
(dropout 0 or eval mode)."""
import copy

import numpy as np

import autograd_core

from . import functional as F
from . import init
from ._checks import positive_int
from .attention import MultiheadAttention
from .layer_norm import LayerNorm
from .layers import Dropout, Linear
from .module import Module, ModuleList

__all__ = ["TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder", "TransformerDecoder",
           "Transformer"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(layer, activation):
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError("%s: activation must be 'relu', 'gelu' or a callable, got %r" % (layer, activation))
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError("%s: activation must be 'relu', 'gelu' or a callable, got %s"
                        % (layer, type(activation).__name__))
    return activation


def _check_input(layer, name, x, d_model):
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise ValueError("%s: expected %s of shape [length, batch, %d] (or [batch, length, %d] with batch_first, "
                         "or [length, %d] unbatched), got %s"
                         % (layer, name, d_model, d_model, d_model, tuple(x.shape)))


class _FeedForward(Module):
    """The shared parts of both layers: linear1, dropout, linear2 and the activation."""

    def _feed_forward_parts(self, layer, d_model, dim_feedforward, dropout, activation, bias, dtype):
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.activation = _activation(layer, activation)

    def _ff_block(self, x, dropout):
        return dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoderLayer(_FeedForward):
    """Self-attention then a feed-forward network, each with a residual and LayerNorm, as
    torch.nn.TransformerEncoderLayer (post-norm by default, pre-norm with norm_first).

    forward(src [S, N, d_model] (or [N, S, d_model] with batch_first, or [S, d_model]),
    src_mask [S, S] or [N * nhead, S, S], src_key_padding_mask [N, S], is_causal) -> the
    shape of src. Masks follow MultiheadAttention (bool True is masked out).
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, dtype=np.float32):
        super().__init__()
        self.d_model = positive_int("TransformerEncoderLayer", "d_model", d_model)
        dim_feedforward = positive_int("TransformerEncoderLayer", "dim_feedforward", dim_feedforward)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self._feed_forward_parts("TransformerEncoderLayer", d_model, dim_feedforward, dropout, activation, bias,
                                 dtype)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.batch_first = bool(batch_first)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """src [S, N, d_model] (batch_first: [N, S, d_model]) -> the same shape."""
        _check_input("TransformerEncoderLayer", "src", src, self.d_model)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x), self.dropout2)
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x, self.dropout2))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)


class TransformerDecoderLayer(_FeedForward):
    """Self-attention, attention over the encoder's output (memory), then a feed-forward
    network, each with a residual and LayerNorm, as torch.nn.TransformerDecoderLayer.

    forward(tgt [T, N, d_model], memory [S, N, d_model] (batch_first: batch first),
    tgt_mask [T, T], memory_mask [T, S], tgt_key_padding_mask [N, T],
    memory_key_padding_mask [N, S], tgt_is_causal, memory_is_causal) -> the shape of tgt.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, dtype=np.float32):
        super().__init__()
        self.d_model = positive_int("TransformerDecoderLayer", "d_model", d_model)
        dim_feedforward = positive_int("TransformerDecoderLayer", "dim_feedforward", dim_feedforward)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, dtype=dtype)
        self._feed_forward_parts("TransformerDecoderLayer", d_model, dim_feedforward, dropout, activation, bias,
                                 dtype)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.batch_first = bool(batch_first)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        """tgt [T, N, d_model], memory [S, N, d_model] (batch_first: batch first) -> tgt's shape."""
        _check_input("TransformerDecoderLayer", "tgt", tgt, self.d_model)
        _check_input("TransformerDecoderLayer", "memory", memory, self.d_model)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x), self.dropout3)
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x, self.dropout3))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (layers.0, layers.1, ...), then
    ``norm`` if given, as torch.nn.TransformerEncoder.

    forward(src, mask, src_key_padding_mask, is_causal) -> the shape of src (see
    TransformerEncoderLayer). Padded positions keep their computed values (torch's
    nested-tensor fast path, which zeroes them, is an evaluation-mode shortcut).
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError("TransformerEncoder: encoder_layer must be a Module (a TransformerEncoderLayer), got %s"
                            % type(encoder_layer).__name__)
        self.num_layers = positive_int("TransformerEncoder", "num_layers", num_layers)
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(self.num_layers)])
        if norm is not None and not isinstance(norm, Module):
            raise TypeError("TransformerEncoder: norm must be a Module or None, got %s" % type(norm).__name__)
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """src [S, N, d_model] (batch_first: [N, S, d_model]) -> the same shape."""
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        if self.norm is not None:
            x = self.norm(x)
        return x


def _stack_parts(owner, layer, num_layers, norm, kind):
    """num_layers deep copies of ``layer`` as a ModuleList, after the checks torch's stacks make."""
    if not isinstance(layer, Module):
        raise TypeError("%s: %s_layer must be a Module (a Transformer%sLayer), got %s"
                        % (owner, kind, kind.capitalize(), type(layer).__name__))
    num_layers = positive_int(owner, "num_layers", num_layers)
    if norm is not None and not isinstance(norm, Module):
        raise TypeError("%s: norm must be a Module or None, got %s" % (owner, type(norm).__name__))
    return num_layers, ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of ``decoder_layer`` (layers.0, layers.1, ...), then
    ``norm`` if given, as torch.nn.TransformerDecoder.

    forward(tgt [T, N, d_model], memory [S, N, d_model] (batch_first: batch first),
    tgt_mask [T, T], memory_mask [T, S], tgt_key_padding_mask [N, T],
    memory_key_padding_mask [N, S], tgt_is_causal, memory_is_causal) -> the shape of tgt.
    Every layer reads the same memory.
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.num_layers, self.layers = _stack_parts("TransformerDecoder", decoder_layer, num_layers, norm, "decoder")
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        """tgt [T, N, d_model], memory [S, N, d_model] (batch_first: batch first) -> tgt's shape."""
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=bool(memory_is_causal))
        if self.norm is not None:
            x = self.norm(x)
        return x


class Transformer(Module):
    """The encoder-decoder Transformer (Vaswani et al.), as torch.nn.Transformer: an
    ``encoder`` (TransformerEncoder of num_encoder_layers layers and a final LayerNorm) and a
    ``decoder`` (TransformerDecoder likewise), or ``custom_encoder`` / ``custom_decoder``.
    Every parameter with more than one dimension starts xavier-uniform, as torch's.

    forward(src [S, N, d_model], tgt [T, N, d_model] (batch_first: [N, S, d_model],
    [N, T, d_model]; or both unbatched [S, d_model], [T, d_model]), src_mask [S, S],
    tgt_mask [T, T], memory_mask [T, S], src_key_padding_mask [N, S],
    tgt_key_padding_mask [N, T], memory_key_padding_mask [N, S], src_is_causal,
    tgt_is_causal, memory_is_causal) -> [T, N, d_model] (tgt's shape).
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, dtype=np.float32):
        super().__init__()
        self.d_model = positive_int("Transformer", "d_model", d_model)
        self.nhead = positive_int("Transformer", "nhead", nhead)
        self.batch_first = bool(batch_first)
        for name, custom in (("custom_encoder", custom_encoder), ("custom_decoder", custom_decoder)):
            if custom is not None and not isinstance(custom, Module):
                raise TypeError("Transformer: %s must be a Module or None, got %s" % (name, type(custom).__name__))
        options = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                       layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias,
                       dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **options), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **options), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self._reset_parameters()

    def _reset_parameters(self):
        """torch's initialisation: xavier-uniform for every parameter of 2 or more dims."""
        for parameter in self.parameters():
            if parameter.ndim > 1:
                init.xavier_uniform_(parameter)

    def extra_repr(self):
        return "d_model=%d, nhead=%d, batch_first=%s" % (self.d_model, self.nhead, self.batch_first)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        """See the class docstring for the shapes. Returns the decoder's output, tgt's shape."""
        for name, x in (("src", src), ("tgt", tgt)):
            if not isinstance(x, autograd_core.Tensor):
                raise TypeError("Transformer: %s must be a Tensor, got %s" % (name, type(x).__name__))
            _check_input("Transformer", name, x, self.d_model)
        if src.ndim != tgt.ndim:
            raise ValueError("Transformer: src and tgt must both be batched or both unbatched, got shapes %s and %s"
                             % (tuple(src.shape), tuple(tgt.shape)))
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise ValueError("Transformer: src and tgt must have the same batch size (dimension %d), got shapes %s "
                             "and %s" % (batch_axis, tuple(src.shape), tuple(tgt.shape)))
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=np.float32):
        """The causal mask [sz, sz] as torch's: 0 on and below the diagonal, -inf above it (a
        float mask: position i attends to positions 0..i). ``device`` is accepted for
        torch's signature and ignored (everything runs on the CPU)."""
        sz = positive_int("Transformer.generate_square_subsequent_mask", "sz", sz)
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError("Transformer.generate_square_subsequent_mask: dtype must be a float type, got %s" % dtype)
        mask = np.triu(np.full((sz, sz), -np.inf, dtype=dtype), k=1)
        return autograd_core.Tensor(mask)
