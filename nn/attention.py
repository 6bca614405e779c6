"""MultiheadAttention with torch.nn.MultiheadAttention's arguments, parameter names and
shapes (in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias
[E]; q_proj_weight, k_proj_weight, v_proj_weight when kdim or vdim differ from E; bias_k,
bias_v [1, 1, E] with add_bias_kv), so a torch state dict loads by name and gives torch's
outputs.

All heads run in one batched matmul: the projections give [N, L, E], viewed as
[N, L, H, D] and moved to [N, H, L, D]; no Python loop over heads.
"""
import math

import numpy as np

import autograd_core

from . import functional as F
from . import init
from ._checks import positive_int
from .layers import Linear
from .module import Module, Parameter

__all__ = ["MultiheadAttention"]


class MultiheadAttention(Module):
    """Multi-head attention, as torch.nn.MultiheadAttention.

    forward(query [L, N, E] (or [N, L, E] with batch_first, or [L, E] unbatched),
    key [S, N, kdim], value [S, N, vdim], key_padding_mask [N, S] (bool: True is ignored;
    float: added), need_weights, attn_mask [L, S] or [N * num_heads, L, S] (bool: True is
    NOT attended; float: added), average_attn_weights, is_causal (a hint that attn_mask
    is the causal mask; attn_mask is still required, as torch)) -> (output like query,
    weights [N, L, S] averaged over heads or [N, num_heads, L, S], or None without
    need_weights). Dropout applies to the attention weights in training mode only.

    add_bias_kv appends one learned key and value (bias_k, bias_v) to every sequence's
    keys and values after the projections; add_zero_attn appends one zero key and value
    per head after that. Each adds a key position that the masks always attend to, so the
    weights have S + 1 (or S + 2) columns, as torch's.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, dtype=np.float32):
        super().__init__()
        self.embed_dim = positive_int("MultiheadAttention", "embed_dim", embed_dim)
        self.num_heads = positive_int("MultiheadAttention", "num_heads", num_heads)
        if self.embed_dim % self.num_heads:
            raise ValueError("MultiheadAttention: embed_dim (%d) must be divisible by num_heads (%d)"
                             % (self.embed_dim, self.num_heads))
        self.dropout = F._check_probability("MultiheadAttention", "dropout", dropout)
        self.kdim = self.embed_dim if kdim is None else positive_int("MultiheadAttention", "kdim", kdim)
        self.vdim = self.embed_dim if vdim is None else positive_int("MultiheadAttention", "vdim", vdim)
        self.head_dim = self.embed_dim // self.num_heads
        self.batch_first = bool(batch_first)
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(np.empty((E, E), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * E, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, E), dtype=dtype))
            self.bias_v = Parameter(np.empty((1, 1, E), dtype=dtype))
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self.add_zero_attn = bool(add_zero_attn)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's initialisation: xavier-uniform projections, zero biases."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            # torch's xavier_normal_ on [1, 1, E] reads fan_in = fan_out = E (its fans take
            # dims 0 and 1 times the rest); nn.init's channels-last fans would read 1 and E
            std = math.sqrt(2.0 / (2 * self.embed_dim))
            init.normal_(self.bias_k, std=std)
            init.normal_(self.bias_v, std=std)

    def _name(self):
        return "MultiheadAttention(embed_dim=%d, num_heads=%d)" % (self.embed_dim, self.num_heads)

    def extra_repr(self):
        text = "embed_dim=%d, num_heads=%d, dropout=%s, batch_first=%s" % (
            self.embed_dim, self.num_heads, self.dropout, self.batch_first)
        if self.bias_k is not None:
            text += ", add_bias_kv=True"
        return text + (", add_zero_attn=True" if self.add_zero_attn else "")

    def _project(self, query, key, value):
        """The three input projections: [N, L, E], [N, S, kdim], [N, S, vdim] -> [N, *, E]."""
        E = self.embed_dim
        bias = self.in_proj_bias
        biases = (None, None, None) if bias is None else (bias[:E], bias[E:2 * E], bias[2 * E:])
        if self._qkv_same_embed_dim:
            if query is key and key is value:  # self-attention: one [3E, E] matmul
                packed = F.linear(query, self.in_proj_weight, bias)
                return packed[..., :E], packed[..., E:2 * E], packed[..., 2 * E:]
            weights = (self.in_proj_weight[:E], self.in_proj_weight[E:2 * E], self.in_proj_weight[2 * E:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        return tuple(F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))

    def _split_heads(self, x):
        """[N, L, E] -> [N, H, L, D]."""
        batch, length = x.shape[0], x.shape[1]
        return x.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """See the class docstring for the shapes. Returns (output, weights or None)."""
        name = self._name()
        for label, tensor, features in (("query", query, self.embed_dim), ("key", key, self.kdim),
                                        ("value", value, self.vdim)):
            if not isinstance(tensor, autograd_core.Tensor):
                raise TypeError("%s: %s must be a Tensor, got %s" % (name, label, type(tensor).__name__))
            if tensor.ndim not in (2, 3) or tensor.shape[-1] != features:
                raise ValueError("%s: expected %s of shape [length, batch, %d] (or [batch, length, %d] with "
                                 "batch_first, or [length, %d] unbatched), got %s"
                                 % (name, label, features, features, features, tuple(tensor.shape)))
            if tensor.dtype != self.out_proj.weight.dtype:
                raise TypeError("%s: %s has dtype %s but the parameters are %s"
                                % (name, label, tensor.dtype, self.out_proj.weight.dtype))
        if not query.ndim == key.ndim == value.ndim:
            raise ValueError("%s: query, key and value must all be batched or all unbatched, got shapes %s, %s, %s"
                             % (name, tuple(query.shape), tuple(key.shape), tuple(value.shape)))
        batched = query.ndim == 3
        same = query is key, key is value
        if not batched:  # [L, E] -> [N=1, L, E]
            query, key, value = (x.reshape((1,) + tuple(x.shape)) for x in (query, key, value))
        elif not self.batch_first:  # [L, N, E] -> [N, L, E]
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if same[0]:
            key = query
        if same[1]:
            value = key
        batch, length, source = query.shape[0], query.shape[1], key.shape[1]
        if key.shape[0] != batch or value.shape[0] != batch or value.shape[1] != source:
            raise ValueError("%s: query, key and value disagree on batch or key length: %s, %s, %s"
                             % (name, tuple(query.shape), tuple(key.shape), tuple(value.shape)))
        if is_causal and attn_mask is None:
            raise ValueError("%s: is_causal=True is a hint that attn_mask is the causal mask; attn_mask is required "
                             "too (as torch)" % name)
        mask = self._combined_mask(name, attn_mask, key_padding_mask, batch, length, source, batched, query.dtype)

        q, k, v = self._project(query, key, value)
        extra = 0  # key positions added after the source's
        if self.bias_k is not None:  # one learned key and value per sequence: [N, S + 1, E]
            k = autograd_core.cat([k, self.bias_k.expand(batch, 1, self.embed_dim)], dim=1)
            v = autograd_core.cat([v, self.bias_v.expand(batch, 1, self.embed_dim)], dim=1)
            extra += 1
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        if self.add_zero_attn:  # one zero key and value per head: [N, H, S' + 1, D]
            zeros = autograd_core.Tensor(np.zeros((batch, self.num_heads, 1, self.head_dim), dtype=q.dtype))
            k = autograd_core.cat([k, zeros], dim=2)
            v = autograd_core.cat([v, zeros], dim=2)
            extra += 1
        if extra and mask is not None:  # the added positions are always attended to
            mask = self._pad_mask(mask, extra)
        dropout_p = self.dropout if self.training else 0.0
        attended, weights = F._attend(q, k, v, mask, dropout_p, 1.0 / math.sqrt(self.head_dim))
        output = attended.transpose(1, 2).reshape(batch, length, self.embed_dim)
        output = self.out_proj(output)
        if not batched:
            output = output.reshape(length, self.embed_dim)
        elif not self.batch_first:
            output = output.transpose(0, 1)
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            weights = weights.reshape(tuple(weights.shape[1:]))
        return output, weights

    @staticmethod
    def _pad_mask(mask, extra):
        """An additive mask [..., S] with ``extra`` zero columns appended: [..., S + extra]."""
        if isinstance(mask, autograd_core.Tensor):  # a float mask that carries a gradient
            return autograd_core.pad(mask, (0, extra))
        return np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, extra)])

    def _combined_mask(self, name, attn_mask, key_padding_mask, batch, length, source, batched, dtype):
        """attn_mask and key_padding_mask as one additive mask broadcasting to [N, H, L, S]."""
        mask = None
        if attn_mask is not None:
            shape = tuple(attn_mask.shape)
            if shape == (length, source):
                pass
            elif shape == (batch * self.num_heads, length, source):
                attn_mask = attn_mask.reshape(batch, self.num_heads, length, source)
            else:
                raise ValueError("%s: expected attn_mask of shape [%d, %d] (target length, source length) or "
                                 "[%d, %d, %d] (batch * num_heads, ...), got %s"
                                 % (name, length, source, batch * self.num_heads, length, source, shape))
            mask = F._float_mask(name, "attn_mask", attn_mask, dtype, bool_means_keep=False)
        if key_padding_mask is not None:
            expected = (batch, source) if batched else (source,)
            if tuple(key_padding_mask.shape) != expected:
                raise ValueError("%s: expected key_padding_mask of shape %s (batch, source length), got %s"
                                 % (name, list(expected), tuple(key_padding_mask.shape)))
            padding = F._float_mask(name, "key_padding_mask", key_padding_mask, dtype, bool_means_keep=False)
            padding = padding.reshape(batch, 1, 1, source)
            mask = padding if mask is None else mask + padding
        return mask
