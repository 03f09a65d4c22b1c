"""Derived optima of the init scale `alpha` for any activation, and the mean-field depth scale.

Expectations over z ~ N(0, 1) use Gauss-Hermite quadrature on each half line (the
half-range rule), so ReLU-type kinks at 0 cost no accuracy; tests/test_theory.py holds the
values against closed forms and an independent adaptive integration.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

from research import activations
from research.activations import Activation
from research.errors import number

THEORIES = ("he", "xavier", "lecun", "forward", "backward", "edge_of_chaos", "pytorch_gain")
_Q_SMALL = 1e-16  # the q -> 0 limit: float64 keeps ~15 digits of E[phi^2] there


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One theory's optimal `alpha`, or None with the reason it has none."""

    theory: str
    alpha: float | None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Criticality:
    """The edge of chaos: `alpha` (= sigma_w^2) with chi_1 = 1 at a stable fixed point q*."""

    alpha: float | None
    q_star: float | None
    note: str


def as_activation(act: str | Activation) -> Activation:
    """Accept a registry name such as "leaky_relu:0.2" or an `Activation`."""
    return act if isinstance(act, Activation) else activations.get(act)


def gaussian_expectation(fn, q: np.ndarray | float) -> np.ndarray:
    """E[fn(sqrt(q) z)] for z ~ N(0, 1), one value per entry of `q`, in float64."""
    nodes, weights = _half_range_rule()
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    x = np.sqrt(q)[:, None] * nodes[None, :]
    with _x64():
        values = np.asarray(fn(jnp.asarray(x))) + np.asarray(fn(jnp.asarray(-x)))
    return values @ weights


def moments(act: str | Activation, q: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2]) for each q."""
    act = as_activation(act)
    dphi = jax.vmap(jax.grad(act.fn))
    e_phi2 = gaussian_expectation(lambda x: act.fn(x) ** 2, q)
    e_dphi2 = gaussian_expectation(lambda x: dphi(x.reshape(-1)).reshape(x.shape) ** 2, q)
    return e_phi2, e_dphi2


def forward_rule(act: str | Activation) -> float:
    """alpha = 1 / E[phi(z)^2]: one square layer keeps a unit-variance input's second moment."""
    return 1.0 / float(moments(act, 1.0)[0][0])


def backward_rule(act: str | Activation) -> float:
    """alpha = 1 / E[phi'(z)^2]: one square layer keeps the gradient's second moment at unit input
    variance (the same condition at the fixed point q* instead of q = 1 is the edge of chaos)."""
    return 1.0 / float(moments(act, 1.0)[1][0])


def linear_regime(act: str | Activation) -> tuple[float | None, str]:
    """phi'(0) where phi is smooth through 0 with phi(0) = 0, else None and why: Glorot's and
    LeCun's derivations linearise phi around 0."""
    act = as_activation(act)
    with _x64():
        at0 = float(act.fn(jnp.float64(0.0)))
        left, at, right = (float(jax.grad(act.fn)(jnp.float64(x))) for x in (-1e-7, 0.0, 1e-7))
    if abs(at0) > 1e-12:
        return None, f"phi(0) = {at0:.3g}, not 0"
    if abs(left - right) > 1e-4 * max(abs(left), abs(right), 1.0):
        return None, f"phi has a kink at 0 (slopes {left:.3g} and {right:.3g})"
    if abs(at) < 1e-12:
        return None, "phi'(0) = 0"
    return at, ""


def chi1(act: str | Activation, alpha: float, q: float) -> float:
    """The mean-field gradient gain per layer, chi_1 = alpha E[phi'(sqrt(q) z)^2]."""
    return float(alpha * moments(act, max(q, _Q_SMALL))[1][0])


def fixed_point(act: str | Activation, alpha: float, sigma_b: float = 0.0, q0: float = 1.0) -> float:
    """The fixed point of q -> alpha E[phi(sqrt(q) z)^2] + sigma_b^2 reached from q0.

    Returns 0.0 when the signal vanishes and inf when it grows without bound.
    """
    act = as_activation(act)
    grid = np.geomspace(_Q_SMALL, 1e4, 800)
    gap = alpha * moments(act, grid)[0] + sigma_b**2 - grid  # > 0: q grows
    flow = lambda q: alpha * moments(act, q)[0][0] + sigma_b**2 - q  # noqa: E731
    if abs(flow(q0)) < 1e-13 * max(q0, 1.0):
        return q0
    grows = flow(q0) > 0
    # Stable roots are where the gap changes sign from + (below) to - (above).
    crossings = np.flatnonzero((gap[:-1] > 0) & (gap[1:] <= 0))
    if grows:
        ahead = [i for i in crossings if grid[i + 1] > q0]
        if not ahead:
            return math.inf
        i = ahead[0]
    else:
        behind = [i for i in crossings if grid[i] < q0]
        if not behind:
            return 0.0
        i = behind[-1]
    return float(optimize.brentq(flow, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-13))


def edge_of_chaos(act: str | Activation, sigma_b: float = 0.0) -> Criticality:
    """Mean-field criticality (Poole et al. 2016; Schoenholz et al. 2017).

    Parametrised by the fixed point: q is a fixed point for alpha(q) = (q - sigma_b^2) /
    E[phi^2]; the edge is where chi_1(q) = alpha(q) E[phi'^2] = 1 and the fixed point is
    stable. With sigma_b = 0 and phi(0) = 0 the edge may sit in the limit q* -> 0.
    """
    act = as_activation(act)
    sb2 = float(sigma_b) ** 2
    q = sb2 + np.geomspace(1e-6, 1e3, 700)
    e_phi2, e_dphi2 = moments(act, q)
    alpha = (q - sb2) / e_phi2
    chi = alpha * e_dphi2
    if np.all(np.abs(chi - 1.0) < 1e-8):
        return Criticality(float(np.median(alpha)), None, "critical at every q (positively homogeneous)")

    def chi_minus_one(qq: float) -> float:
        p2, d2 = moments(act, qq)
        return float((qq - sb2) / p2[0] * d2[0] - 1.0)

    unstable = []
    for i in np.flatnonzero(np.sign(chi[:-1] - 1.0) != np.sign(chi[1:] - 1.0)):
        q_star = optimize.brentq(chi_minus_one, q[i], q[i + 1], xtol=1e-14, rtol=1e-13)
        a_star = float((q_star - sb2) / moments(act, q_star)[0][0])
        if _map_slope(act, a_star, q_star) < 1.0:
            return Criticality(a_star, float(q_star), "stable fixed point")
        unstable.append(a_star)
    if sb2 == 0.0 and abs(float(act.fn(0.0))) < 1e-12:
        small = np.array([_Q_SMALL, 1e-8])
        a_small = small / moments(act, small)[0]
        if a_small[1] > a_small[0]:  # the map bends below the diagonal: q* = 0 attracts
            return Criticality(float(a_small[0]), 0.0, "q* -> 0 (critical in the linear regime)")
        unstable.append(float(a_small[0]))
    if unstable:
        at = ", ".join(f"{a:.3g}" for a in unstable)
        return Criticality(
            None, None, f"no stable critical point (chi_1 = 1 only at unstable fixed points, alpha = {at})"
        )
    side = "<" if np.all(chi < 1.0) else ">"
    return Criticality(None, None, f"no critical point (chi_1 {side} 1 at every fixed point)")


def depth_scale(act: str | Activation, alpha: float, sigma_b: float = 0.0) -> float:
    """Depth scale xi = 1 / |log chi_c| over which signals and correlations settle.

    Ordered side (chi_1 < 1): chi_c = chi_1. Chaotic side: chi_c is the slope of the
    correlation map at its stable fixed point c* < 1 (Schoenholz et al. 2017), or chi_1
    where there is none (ReLU). inf at the edge.
    """
    act = as_activation(act)
    q_star = min(fixed_point(act, alpha, sigma_b), 1e6)
    chi = chi1(act, alpha, q_star)
    if chi > 1.0 + 1e-9:
        chi = _correlation_slope(act, alpha, sigma_b, q_star) or chi
    return math.inf if abs(chi - 1.0) <= 1e-9 else 1.0 / abs(math.log(chi))


def _correlation_slope(act: Activation, alpha: float, sigma_b: float, q_star: float) -> float | None:
    """chi_c = alpha E[phi'(u1) phi'(u2)] at the stable correlation fixed point c* < 1, if any."""
    dphi = jax.vmap(jax.grad(act.fn))
    dphi_fn = lambda x: dphi(x.reshape(-1)).reshape(x.shape)  # noqa: E731

    def c_gap(c: np.ndarray) -> np.ndarray:
        return (alpha * _pair_expectation(act.fn, q_star, c) + sigma_b**2) / q_star - c

    grid = np.linspace(-0.99, 1.0 - 1e-6, 200)
    gap = c_gap(grid)
    drops = np.flatnonzero((gap[:-1] > 0) & (gap[1:] <= 0))
    if not len(drops):
        return None
    c_star = optimize.brentq(lambda c: float(c_gap(np.array([c]))[0]), grid[drops[-1]], grid[drops[-1] + 1], xtol=1e-13)
    return float(alpha * _pair_expectation(dphi_fn, q_star, np.array([c_star]))[0])


def _pair_expectation(fn, q: float, c: np.ndarray) -> np.ndarray:
    """E[fn(u1) fn(u2)] for unit-correlation-c Gaussians of variance q, one per entry of c."""
    half_nodes, half_weights = _half_range_rule()
    z = np.concatenate([-half_nodes, half_nodes])
    w = np.concatenate([half_weights, half_weights])
    c = np.asarray(c, dtype=np.float64)[:, None, None]
    u1 = np.sqrt(q) * z[None, :, None]
    u2 = np.sqrt(q) * (c * z[None, :, None] + np.sqrt(1.0 - c * c) * z[None, None, :])
    with _x64():
        f1, f2 = np.asarray(fn(jnp.asarray(u1))), np.asarray(fn(jnp.asarray(u2)))
    return np.einsum("cij,i,j->c", f1 * f2, w, w)


def predict(act: str | Activation, sigma_b: float = 0.0) -> list[Prediction]:
    """Every named theory's optimal `alpha` for `act` on square layers; a rule whose derivation
    does not cover `act` has alpha None and says why (docs/theory.md derives each)."""
    act = as_activation(act)
    slope, why = linear_regime(act)
    linear = None if slope is None else 1.0 / slope**2
    unit = slope is not None and abs(slope - 1.0) < 1e-9
    rectifier = act.rectifier
    he = 2.0 / (act.slopes[0] ** 2 + act.slopes[1] ** 2) if rectifier else None  # E[phi(z)^2] = (a^2 + b^2) / 2
    eoc = edge_of_chaos(act, sigma_b)
    gain = act.torch_gain
    return [
        Prediction("he", he, "2/(a^2+b^2) on fan_in for slopes a, b" if rectifier else "n/a: derived for rectifiers"),
        Prediction("xavier", linear, "1/phi'(0)^2 on fan_avg" if linear else f"n/a: {why}"),
        Prediction("lecun", 1.0 if unit else None,
                   "1 on fan_in" if unit else f"n/a: needs phi(0) = 0 and phi'(0) = 1 ({why or f'slope {slope:.3g}'})"),
        Prediction("forward", forward_rule(act), "1/E[phi(z)^2], z ~ N(0, 1)"),
        Prediction("backward", backward_rule(act), "1/E[phi'(z)^2], z ~ N(0, 1)"),
        Prediction("edge_of_chaos", eoc.alpha, eoc.note if eoc.q_star is None else f"q* = {eoc.q_star:.4g}"),
        Prediction("pytorch_gain", None if gain is None else gain**2,
                   "gain^2 of calculate_gain" if gain else "n/a: torch has no gain"),
    ]  # fmt: skip


def distinct(predictions: dict[str, float | None], rtol: float = 1e-6) -> list[tuple[str, float]]:
    """Each distinct predicted alpha once, named by every theory that gives it ("he = forward"),
    in increasing alpha; theories without a prediction are left out."""
    merged: list[tuple[list[str], float]] = []
    for name, alpha in predictions.items():
        if alpha is None:
            continue
        for names, value in merged:
            if abs(alpha - value) <= rtol * abs(value):
                names.append(name)
                break
        else:
            merged.append(([name], alpha))
    return sorted(((" = ".join(names), value) for names, value in merged), key=lambda kv: kv[1])


def _map_slope(act: Activation, alpha: float, q: float, h: float = 1e-5) -> float:
    """d/dq of the variance map at q (central difference in log q)."""
    lo, hi = moments(act, np.array([q * (1 - h), q * (1 + h)]))[0]
    return float(alpha * (hi - lo) / (2 * h * q))


@functools.cache
def _half_range_rule(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Gauss nodes and weights for the N(0, 1) density restricted to [0, inf).

    Built by the discretised Stieltjes procedure (Gautschi): recurrence coefficients of the
    orthonormal polynomials, then Golub-Welsch on the Jacobi matrix. Exact for polynomials
    of degree 2n - 1 on the half line; the two halves together give E[f(z)].
    """
    t, v = np.polynomial.legendre.leggauss(3000)
    t = (t + 1.0) * 10.0  # [0, 20]: the density beyond is below 1e-87
    v = v * 10.0 * np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    a, b = np.zeros(n), np.zeros(n)
    b0 = v.sum()
    p_prev, p = np.zeros_like(t), np.full_like(t, 1.0 / math.sqrt(b0))
    for k in range(n):
        a[k] = np.sum(v * t * p * p)
        r = (t - a[k]) * p - (math.sqrt(b[k]) * p_prev if k else 0.0)
        norm = np.sum(v * r * r)
        if k + 1 < n:
            b[k + 1] = norm
        p_prev, p = p, r / math.sqrt(norm)
    off = np.sqrt(b[1:])
    nodes, vectors = np.linalg.eigh(np.diag(a) + np.diag(off, 1) + np.diag(off, -1))
    return nodes, b0 * vectors[0] ** 2


def _x64():
    """Float64 for the quadrature."""
    return jax.enable_x64(True)


def validate_sigma_b(sigma_b: float) -> float:
    """sigma_b as a float >= 0, or a clear error."""
    number(sigma_b, "sigma_b", "a number >= 0", lambda v: v >= 0)
    return float(sigma_b)
