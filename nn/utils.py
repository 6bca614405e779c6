"""nn.utils: helpers as torch.nn.utils."""

# ---- gradient clipping (issue 14, optimizers): the functions live in nn/clip.py ----
from .clip import clip_grad_norm_, clip_grad_value_  # noqa: F401
# ---- end of gradient clipping ----
