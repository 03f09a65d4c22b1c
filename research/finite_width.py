"""Finite width as a prediction: the O(1/n) shift of a bias-free ReLU MLP's forward-probe zero.

The probe takes the least-squares slope over layers of log Q_l, Q_l the mean over units and
examples of h_l^2. For ReLU the expectation E[Q_{l+1}] = (Var(W) n / 2) E[Q_l] holds at any width;
the log of a mean of n terms sits below the log of its expectation by half its relative variance.
Two such terms per layer: the next layer's Gaussian rows against this layer's activations,
rho_l = sum K^_bc^2 / (sum K^_bb)^2 over the post-activation kernel K^, and halving by the ReLU,
(Var Y - Var X) / (2 mu^2) with X the per-unit mean square of h and Y twice that of relu(h) over
the examples (arc-cosine kernels of degree 1 and 2, Cho & Saul 2009). With c_l their sum, E log
Q_l = l log(gain) - sum_{k<l} c_k / n_k, so the zero moves up by the least-squares slope over l of
C_l = sum_{k<l} c_k / n_k. One example alone has c = 1 + 3/2 = 5/2 at every layer (a chi-square
over a binomial number of active units); a batch of weakly correlated examples averages part of
it away in the first layers. docs/theory.md section 5 derives it; the next order is measured there.
"""

from __future__ import annotations

import numpy as np

from research import data, models, probes


def _arc_cosine(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the outer product of the diagonal, E[relu(u) relu(v)], E[relu(u)^2 relu(v)^2]) over every pair
    of examples under the pre-activation kernel `kernel`."""
    diag = np.diag(kernel)
    outer = np.outer(diag, diag)
    theta = np.arccos(np.clip(kernel / np.sqrt(outer), -1.0, 1.0))
    one = np.sqrt(outer) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    two = outer * (3 * np.sin(theta) * np.cos(theta) + (np.pi - theta) * (1 + 2 * np.cos(theta) ** 2)) / (2 * np.pi)
    return outer, one, two


def layer_terms(kernel: np.ndarray) -> tuple[float, np.ndarray]:
    """(c_l, the next layer's kernel up to scale) for the pre-activation kernel `kernel` [B, B]."""
    b = len(kernel)
    outer, post, fourth = _arc_cosine(kernel)
    mu = np.trace(kernel) / b
    var_x = 2 * np.sum(kernel**2) / b**2
    var_y = 4 * np.sum(fourth - outer / 4) / b**2
    rho = np.sum(post**2) / np.trace(post) ** 2
    return float(rho + (var_y - var_x) / (2 * mu**2)), 2 * post


def applies(cfg) -> bool:
    """Whether the derivation covers the study's network: a bias-free ReLU MLP."""
    model = cfg.model
    return model.name == "mlp" and model.activation == "relu" and not float(model.sigma_b)


def shift(cfg) -> float:
    """log alpha*(widths) - log alpha*(infinite width) of the forward probe of study config `cfg`
    (a bias-free ReLU MLP, `applies`), on the study's own probe inputs, to first order in 1/n."""
    x = np.asarray(probes.study_inputs(cfg, data.load(cfg.data)), np.float64)
    x = x.reshape(len(x), -1)
    kernel = x @ x.T / x.shape[1]
    cumulative = [0.0]
    for n in models.hidden_widths(cfg.model)[:-1]:  # layer l's units feed layer l + 1
        c, kernel = layer_terms(kernel)
        cumulative.append(cumulative[-1] + c / n)
    return float(probes.log_slope(np.exp(np.array(cumulative)), np))
