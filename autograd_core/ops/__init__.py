"""Differentiable ops: each is one Function subclass plus a functional wrapper."""
