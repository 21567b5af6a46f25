"""``k`` diverse small networks held as one stack of tensors, so a step trains them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

WIDTHS = (16, 32, 64)
DEPTHS = (1, 2, 3)
# Swish-beta, x * sigmoid(beta x), per network: near linear (small beta) to near ReLU (large)
ACTIVATIONS = (0.5, 1.0, 2.0, 4.0)
OPTIMIZERS = ("rprop", "adam", "rmsprop")
INITS = ("xavier", "kaiming", "orthogonal")
SPARSITY = (0.0, 0.25, 0.5)
_LR = {"adam": 2e-2, "rmsprop": 1e-2, "rprop": 1e-3}  # Rprop: its initial step size
_DECAY = 1e-5  # weight decay of Adam and RMSprop


@dataclass(frozen=True)
class Spec:
    """One network's design."""

    width: int
    depth: int
    activation: float  # the beta of its Swish
    optimizer: str
    init: str
    sparsity: float

    def __str__(self) -> str:
        return (
            f"{self.depth}x{self.width} swish(beta={self.activation:g}), {self.optimizer}, "
            f"{self.init} init, {self.sparsity:.0%} sparse"
        )


def draw_specs(k: int, seed: int) -> list[Spec]:
    """``k`` designs: every optimizer, activation and initialization in turn (so that even
    a few networks differ in each), widths, depths and sparsity drawn."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for i in range(k):
        out.append(
            Spec(
                width=int(rng.choice(WIDTHS)),
                depth=int(rng.choice(DEPTHS)),
                activation=ACTIVATIONS[(i + int(rng.integers(2))) % len(ACTIVATIONS)],
                optimizer=OPTIMIZERS[i % len(OPTIMIZERS)],
                init=INITS[(i // len(OPTIMIZERS)) % len(INITS)],
                sparsity=float(rng.choice(SPARSITY)),
            )
        )
    return out


class Stack:
    """The networks, padded to the widest and deepest: a narrower one has its extra units
    masked off, a shallower one passes its extra layers through unchanged, and each
    applies its own activation (a Swish of its own steepness); each keeps its own
    optimizer's state. The networks are ordered by optimizer, so that each optimizer steps
    its own block of rows alone. All parameters of a
    network are one row of a single tensor, so a step of every optimizer is a few
    operations on that tensor, and one batched product per layer serves all networks."""

    def __init__(self, specs: list[Spec], d: int, seed: int):
        import torch

        specs = sorted(
            specs,
            key=lambda s: OPTIMIZERS.index(s.optimizer),
        )
        self.specs, self.k, self.d = specs, len(specs), d
        H, L, k = max(s.width for s in specs), max(s.depth for s in specs), len(specs)
        self.H, self.L = H, L
        gen = torch.Generator().manual_seed(int(seed) % 2**63)
        self.beta = torch.tensor([s.activation for s in specs])[:, None, None]
        self.gates = torch.tensor([[float(i < s.depth) for i in range(L)] for s in specs])
        self.shallow = bool((self.gates < 1).any())
        # the layout of a network's row: per layer its weights then its biases, then the output
        self.shapes = [(d, H)] + [(H, H)] * (L - 1)
        sizes = [a * b + b for a, b in self.shapes] + [H + 1]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        # one split per forward pass (its gradient is one concatenation, not a sum per slice)
        self._parts = [n for a, b in self.shapes for n in (a * b, b)] + [H, 1]
        theta = torch.zeros(k, self.offsets[-1])
        mask = torch.zeros(k, self.offsets[-1])
        for i, s in enumerate(specs):
            for li, (a, b) in enumerate(self.shapes):
                rows = a if li == 0 else s.width
                sub = torch.empty(s.width, rows)  # torch's (out, in) layout
                _initialize(sub, s.init, gen)
                keep = torch.ones(rows, s.width)
                if s.sparsity and rows > 1:
                    keep = (torch.rand(rows, s.width, generator=gen) >= s.sparsity).float()
                W = torch.zeros(a, b)
                M = torch.zeros(a, b)
                W[:rows, : s.width] = sub.T * keep
                M[:rows, : s.width] = keep
                o = self.offsets[li]
                theta[i, o : o + a * b] = W.reshape(-1)
                mask[i, o : o + a * b] = M.reshape(-1)
                mask[i, o + a * b : o + a * b + s.width] = 1.0  # the live units' biases
            o = self.offsets[L]
            theta[i, o : o + s.width] = torch.randn(s.width, generator=gen) / np.sqrt(s.width)
            mask[i, o : o + s.width] = 1.0
            mask[i, o + H] = 1.0
        self.theta = theta.requires_grad_()
        self.mask = mask
        self._opt = _StackedOptimizer(self.theta, _runs([s.optimizer for s in specs]))

    def forward(self, X: Any, theta: Any = None) -> Any:
        """Every network's prediction at its own rows: ``X`` is `k x m x d`, out `k x m`;
        ``theta``: the parameters to use (a copy taken earlier), the live ones by default."""
        import torch

        theta = self.theta if theta is None else theta
        parts = theta.split(self._parts, dim=1)
        h = X
        for li, (a, b_) in enumerate(self.shapes):
            W, b = parts[2 * li].view(-1, a, b_), parts[2 * li + 1][:, None]
            z = torch.baddbmm(b, h, W)
            z = z * torch.sigmoid(self.beta * z)
            if li == 0 or not self.shallow:
                h = z
            else:  # a network shallower than this passes its last layer's output on
                g = self.gates[:, li][:, None, None]
                h = torch.lerp(h, z, g)
        w_out, b_out = parts[-2][:, :, None], parts[-1][:, None]
        return torch.baddbmm(b_out, h, w_out)[..., 0]

    def step(self, X: Any, y: Any) -> float:
        """One optimizer step of every network on its own batch (`k x B x d`, `k x B`)."""
        import torch

        self.theta.grad = None
        loss = ((self.forward(X) - y) ** 2).mean(dim=1).sum()
        loss.backward()
        with torch.no_grad():
            self._opt.step()
            self.theta.mul_(self.mask)
        return float(loss.detach()) / self.k

    def copy(self) -> Any:
        """The parameters as they are now, for predictions while training goes on."""
        return self.theta.detach().clone()

    def predict(self, X: Any, theta: Any) -> Any:
        """Every network at the same points ``X`` (`m x d`): `k x m`."""
        import torch

        with torch.no_grad():
            return self.forward(X[None].expand(self.k, -1, -1), theta)

    def descend(self, starts: Any, steps: int, lr: Any, theta: Any) -> tuple[Any, Any]:
        """Projected descent, in the unit cube, of each network on its own prediction from
        its own starting points (`k x S x d`), by normalized steps of ``lr`` (a number, or
        one per start: `S`) shrinking to nothing: the best point of each path after its
        first step (by the network's own prediction, not the last point: a path that
        overshoots a narrow minimum keeps the point nearest it) and its prediction."""
        import torch

        scale = torch.as_tensor(lr, dtype=starts.dtype).reshape(1, -1, 1)
        x = starts.clone().requires_grad_()
        best_x = starts.clone()
        best_f = torch.full(starts.shape[:2], torch.inf, dtype=starts.dtype)
        for t in range(steps + 1):
            f = self.forward(x, theta)
            with torch.no_grad():
                if t:
                    better = f < best_f
                    best_f = torch.where(better, f, best_f)
                    best_x = torch.where(better[..., None], x, best_x)
            if t == steps:
                break
            (g,) = torch.autograd.grad(f.sum(), x)
            with torch.no_grad():
                x -= scale * (1.0 - t / steps) * g / (g.norm(dim=2, keepdim=True) + 1e-12)
                x.clamp_(0.0, 1.0)
        return best_x.detach(), best_f.detach()


class _StackedOptimizer:
    """Adam, RMSprop and Rprop at once on the networks' rows: each on its own block."""

    def __init__(self, theta: Any, blocks: list[tuple[str, int, int]]):
        import torch

        self.theta, self.blocks = theta, blocks
        self.t = 0
        self.state: list[tuple[Any, ...]] = []
        for kind, i, j in blocks:
            zeros = torch.zeros_like(theta[i:j])
            if kind == "adam":
                self.state.append((zeros, zeros.clone()))
            elif kind == "rmsprop":
                self.state.append((zeros,))
            else:  # the last step's gradient (its sign), and the step sizes
                self.state.append((zeros, torch.full_like(zeros, _LR["rprop"])))

    def step(self) -> None:
        import torch

        grad = self.theta.grad
        if grad is None:
            return
        self.t += 1
        b1, b2, alpha, eps = 0.9, 0.999, 0.99, 1e-8
        for (kind, i, j), state in zip(self.blocks, self.state, strict=True):
            p, g = self.theta[i:j], grad[i:j]
            if kind == "adam":
                m, v = state
                gd = g + _DECAY * p
                m.mul_(b1).add_(gd, alpha=1 - b1)
                v.mul_(b2).addcmul_(gd, gd, value=1 - b2)
                denom = (v / (1 - b2**self.t)).sqrt_().add_(eps)
                p.addcdiv_(m, denom, value=-_LR["adam"] / (1 - b1**self.t))
            elif kind == "rmsprop":
                (s,) = state
                gd = g + _DECAY * p
                s.mul_(alpha).addcmul_(gd, gd, value=1 - alpha)
                p.addcdiv_(gd, s.sqrt().add_(eps), value=-_LR["rmsprop"])
            else:
                prev, size = state
                sign = (g * prev).sign_()
                factor = torch.where(sign > 0, 1.2, torch.where(sign < 0, 0.5, 1.0))
                size.mul_(factor).clamp_(1e-6, 50.0)
                g_rp = g * (sign >= 0)
                prev.copy_(g_rp)
                p.sub_(size * g_rp.sign())


def _runs(kinds: list[str]) -> list[tuple[str, int, int]]:
    """The runs of equal neighbours in ``kinds``: ``(kind, start, stop)``."""
    out: list[tuple[str, int, int]] = []
    for i, kind in enumerate(kinds):
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1], i + 1)
        else:
            out.append((kind, i, i + 1))
    return out


def _initialize(weight: Any, how: str, gen: Any) -> None:
    import torch

    if how == "xavier":
        torch.nn.init.xavier_uniform_(weight, generator=gen)
    elif how == "kaiming":
        torch.nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=gen)
    else:
        torch.nn.init.orthogonal_(weight, generator=gen)
