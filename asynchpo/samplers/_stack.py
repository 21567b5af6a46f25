"""``k`` diverse small networks held as one stack of tensors, so a step trains them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

WIDTHS = (16, 32, 64)
DEPTHS = (1, 2, 3)
ACTIVATIONS = ("tanh", "silu", "elu", "softplus")
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
    activation: str
    optimizer: str
    init: str
    sparsity: float

    def __str__(self) -> str:
        return (
            f"{self.depth}x{self.width} {self.activation}, {self.optimizer}, "
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
    applies its own activation (the networks are ordered by activation, so each is
    computed on its slice alone); each keeps its own optimizer's state. All parameters of
    a network are one row of a single tensor, so a step of every optimizer is a few
    operations on that tensor, and one batched product per layer serves all networks."""

    def __init__(self, specs: list[Spec], d: int, seed: int):
        import torch

        specs = sorted(specs, key=lambda s: ACTIVATIONS.index(s.activation))
        self.specs, self.k, self.d = specs, len(specs), d
        H, L, k = max(s.width for s in specs), max(s.depth for s in specs), len(specs)
        self.H, self.L = H, L
        gen = torch.Generator().manual_seed(int(seed) % 2**63)
        kinds = [s.activation for s in specs]
        self.slices = [
            (a, kinds.index(a), len(kinds) - kinds[::-1].index(a)) for a in dict.fromkeys(kinds)
        ]
        self.gates = torch.tensor([[float(i < s.depth) for i in range(L)] for s in specs])
        self.shallow = bool((self.gates < 1).any())
        # the layout of a network's row: per layer its weights then its biases, then the output
        self.shapes = [(d, H)] + [(H, H)] * (L - 1)
        sizes = [a * b + b for a, b in self.shapes] + [H + 1]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
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
        self._opt = _StackedOptimizer(self.theta, [s.optimizer for s in specs])

    def _layer(self, theta: Any, li: int) -> tuple[Any, Any]:
        a, b = self.shapes[li]
        o = self.offsets[li]
        return theta[:, o : o + a * b].view(-1, a, b), theta[:, o + a * b : o + a * b + b][:, None]

    def forward(self, X: Any, theta: Any = None) -> Any:
        """Every network's prediction at its own rows: ``X`` is `k x m x d`, out `k x m`;
        ``theta``: the parameters to use (a copy taken earlier), the live ones by default."""
        import torch

        theta = self.theta if theta is None else theta
        f = torch.nn.functional
        act: dict[str, Any] = {
            "tanh": torch.tanh,
            "silu": f.silu,
            "elu": f.elu,
            "softplus": f.softplus,
        }
        h = X
        for li in range(self.L):
            W, b = self._layer(theta, li)
            z = torch.baddbmm(b, h, W)
            z = torch.cat([act[a](z[i:j]) for a, i, j in self.slices])
            if li == 0 or not self.shallow:
                h = z
            else:
                g = self.gates[:, li][:, None, None]
                h = g * z + (1.0 - g) * h
        o = self.offsets[self.L]
        w_out = theta[:, o : o + self.H][:, :, None]
        b_out = theta[:, o + self.H : o + self.H + 1][:, None]
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

    def descend(self, starts: Any, steps: int, lr: float, theta: Any) -> tuple[Any, Any]:
        """Projected descent, in the unit cube, of each network on its own prediction from
        its own starting points (`k x S x d`): the end points and their predictions."""
        import torch

        x = starts.clone().requires_grad_()
        for t in range(steps):
            (g,) = torch.autograd.grad(self.forward(x, theta).sum(), x)
            with torch.no_grad():
                x -= lr * (1.0 - t / steps) * g / (g.norm(dim=2, keepdim=True) + 1e-12)
                x.clamp_(0.0, 1.0)
        with torch.no_grad():
            return x.detach(), self.forward(x, theta)


class _StackedOptimizer:
    """Adam, RMSprop and Rprop at once on the networks' rows, each row by its own."""

    def __init__(self, theta: Any, kinds: list[str]):
        import torch

        self.theta = theta
        k = len(kinds)
        self.sel = {
            kind: torch.tensor([float(x == kind) for x in kinds]).reshape(k, 1)
            for kind in OPTIMIZERS
        }
        self.t = 0
        self.m, self.v, self.s = (torch.zeros_like(theta) for _ in range(3))
        self.prev = torch.zeros_like(theta)
        self.size = torch.full_like(theta, _LR["rprop"])

    def step(self) -> None:
        import torch

        p, g = self.theta, self.theta.grad
        if g is None:
            return
        self.t += 1
        b1, b2, alpha, eps = 0.9, 0.999, 0.99, 1e-8
        gd = g + _DECAY * p
        self.m.mul_(b1).add_(gd, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(gd, gd, value=1 - b2)
        adam = (
            (_LR["adam"] / (1 - b1**self.t)) * self.m / ((self.v / (1 - b2**self.t)).sqrt_() + eps)
        )
        self.s.mul_(alpha).addcmul_(gd, gd, value=1 - alpha)
        rms = _LR["rmsprop"] * gd / (self.s.sqrt() + eps)
        sign = (g * self.prev).sign_()
        self.size.mul_(torch.where(sign > 0, 1.2, torch.where(sign < 0, 0.5, 1.0))).clamp_(
            1e-6, 50.0
        )
        g_rp = g * (sign >= 0)
        self.prev = g_rp
        rprop = self.size * g_rp.sign()
        p -= self.sel["adam"] * adam + self.sel["rmsprop"] * rms + self.sel["rprop"] * rprop


def _initialize(weight: Any, how: str, gen: Any) -> None:
    import torch

    if how == "xavier":
        torch.nn.init.xavier_uniform_(weight, generator=gen)
    elif how == "kaiming":
        torch.nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=gen)
    else:
        torch.nn.init.orthogonal_(weight, generator=gen)
