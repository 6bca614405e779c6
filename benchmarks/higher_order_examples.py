"""Two worked examples of higher-order gradients, each checked against PyTorch when it is
installed (same data, same initial weights, float64):

1. Gradient penalty: a small tanh MLP fitted to a 2-D regression, its loss plus
   lambda * mean over samples of |d f(x) / d x|^2 (the input gradient's squared norm,
   WGAN-GP's penalty), trained with SGD. The penalty's gradient with respect to the
   weights is a second derivative: it goes through create_graph=True.
2. Newton's method: L2-regularised logistic regression, each step w <- w - H^{-1} g with
   the Hessian H from autograd_core.func.hessian and g from autograd_core.grad; it
   converges quadratically. Then one Hessian-free step: conjugate gradient on H d = -g
   with Hessian-vector products (func.hvp), no Hessian built.

    python -m benchmarks.higher_order_examples [--steps 200] [--out FILE.json]

Prints each example's losses beside torch's and the largest difference.
"""
import argparse
import json
import sys

import numpy as np

import autograd_core as ag
from autograd_core import func


def _data(seed=0, samples=64):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (samples, 2))
    y = np.sin(x[:, :1] * 2) * np.cos(x[:, 1:]) + 0.05 * rng.standard_normal((samples, 1))
    return x, y


def _initial_weights(seed=1, hidden=16):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2, hidden)) * 0.7, np.zeros(hidden), rng.standard_normal((hidden, 1)) * 0.3,
            np.zeros(1)]


def gradient_penalty(lib, grad, steps, penalty=0.1, learning_rate=0.1):
    """Losses per step of the penalised MLP, in lib (autograd_core or torch, whose
    gradient function is grad: autograd_core.grad or torch.autograd.grad)."""
    x_data, y_data = _data()
    weights = [lib.tensor(w, requires_grad=True) for w in _initial_weights()]
    target = lib.tensor(y_data)
    losses = []
    for _ in range(steps):
        x = lib.tensor(x_data, requires_grad=True)
        w1, b1, w2, b2 = weights
        out = (x @ w1 + b1).tanh() @ w2 + b2
        fit = ((out - target) ** 2).mean()
        (input_grad,) = grad(out.sum(), x, create_graph=True)  # d f(x_i) / d x_i, per sample
        loss = fit + penalty * (input_grad ** 2).sum(dim=1).mean()
        for w in weights:
            w.grad = None
        loss.backward()
        with lib.no_grad():
            for w in weights:
                w -= learning_rate * w.grad
        losses.append(float(loss.item()))
    return losses


def _logistic_problem(seed=2, samples=200, features=5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, features))
    truth = rng.standard_normal(features)
    y = (x @ truth + 0.5 * rng.standard_normal(samples) > 0).astype(np.float64)
    return x, y


def _logistic_loss(lib, x, y, w, l2=0.1):
    """mean(softplus(z) - y z) + l2/2 |w|^2 with z = x w: the logistic loss, written with
    softplus so that it is stable."""
    z = x @ w
    return (lib.nn.functional.softplus(z) - y * z).mean() + 0.5 * l2 * (w * w).sum()


def newton_ours(iterations=6):
    import nn
    x_data, y_data = _logistic_problem()
    x, y = ag.tensor(x_data), ag.tensor(y_data)

    class _Namespace:  # (the loss takes a library with .nn.functional.softplus)
        pass
    lib = _Namespace()
    lib.nn = nn
    loss = lambda w: _logistic_loss(lib, x, y, w)
    w = ag.tensor(np.zeros(x_data.shape[1]))
    losses = [float(loss(w).item())]
    for _ in range(iterations):
        gradient = func.grad(loss)(w).detach()
        hessian = func.hessian(loss, w)
        step = ag.linalg.solve(hessian, gradient.reshape(-1, 1)).reshape(-1)
        w = w - step
        losses.append(float(loss(w).item()))
    # one Hessian-free step from the start: conjugate gradient on H d = -g with H v products
    start = ag.tensor(np.zeros(x_data.shape[1]))
    gradient = func.grad(loss)(start).detach()
    direction = _conjugate_gradient(lambda v: func.hvp(loss, start, v)[1], -gradient, 10)
    return losses, float(loss(start + direction).item())


def _conjugate_gradient(product, b, iterations):
    """Solve A d = b for a symmetric positive definite A given only v -> A v."""
    d = b * 0
    r = b
    p = r
    rr = float((r * r).sum().item())
    for _ in range(iterations):
        if rr < 1e-20:
            break
        ap = product(p)
        alpha = rr / float((p * ap).sum().item())
        d = d + alpha * p
        r = r - alpha * ap
        new = float((r * r).sum().item())
        p = r + (new / rr) * p
        rr = new
    return d


def newton_torch(torch, iterations=6):
    x_data, y_data = _logistic_problem()
    x, y = torch.tensor(x_data), torch.tensor(y_data)
    loss = lambda w: _logistic_loss(torch, x, y, w)
    w = torch.zeros(x_data.shape[1], dtype=torch.float64)
    losses = [float(loss(w))]
    for _ in range(iterations):
        gradient = torch.func.grad(loss)(w)
        hessian = torch.autograd.functional.hessian(loss, w)
        w = w - torch.linalg.solve(hessian, gradient)
        losses.append(float(loss(w)))
    start = torch.zeros(x_data.shape[1], dtype=torch.float64)
    gradient = torch.func.grad(loss)(start)
    direction = _conjugate_gradient(lambda v: torch.autograd.functional.hvp(loss, start, v)[1], -gradient, 10)
    return losses, float(loss(start + direction))


def run(steps=200, newton_iterations=6):
    """Both examples, with torch's numbers where torch is installed: a dict for JSON."""
    try:
        import torch
    except ImportError:
        torch = None
    report = {"gradient_penalty": {"steps": steps, "ours": gradient_penalty(ag, ag.grad, steps)}}
    ours_newton, ours_cg = newton_ours(newton_iterations)
    report["newton"] = {"ours": ours_newton, "hessian_free_step_ours": ours_cg}
    if torch is not None:
        theirs = gradient_penalty(torch, torch.autograd.grad, steps)
        report["gradient_penalty"]["torch"] = theirs
        report["gradient_penalty"]["max_difference"] = float(np.max(np.abs(np.subtract(
            report["gradient_penalty"]["ours"], theirs))))
        theirs_newton, theirs_cg = newton_torch(torch, newton_iterations)
        report["newton"]["torch"] = theirs_newton
        report["newton"]["hessian_free_step_torch"] = theirs_cg
        report["newton"]["max_difference"] = float(np.max(np.abs(np.subtract(ours_newton, theirs_newton))))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="gradient-penalty SGD steps (default 200)")
    parser.add_argument("--out", help="write the report as JSON to this file")
    args = parser.parse_args(argv)
    report = run(args.steps)
    penalty, newton = report["gradient_penalty"], report["newton"]
    print("gradient penalty, %d SGD steps: loss %.6f -> %.6f" % (args.steps, penalty["ours"][0], penalty["ours"][-1]))
    if "torch" in penalty:
        print("  torch:                          loss %.6f -> %.6f   (largest difference per step %.2e)"
              % (penalty["torch"][0], penalty["torch"][-1], penalty["max_difference"]))
    print("Newton's method, logistic regression: losses " + " ".join("%.10f" % v for v in newton["ours"]))
    if "torch" in newton:
        print("  torch:                              losses " + " ".join("%.10f" % v for v in newton["torch"])
              + "   (largest difference %.2e)" % newton["max_difference"])
    print("one Hessian-free (CG on H v) step: loss %.10f%s" % (
        newton["hessian_free_step_ours"], "   torch %.10f" % newton["hessian_free_step_torch"]
        if "hessian_free_step_torch" in newton else ""))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
