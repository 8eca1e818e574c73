"""Step time of examples/mlp.mp and examples/transformer.mp written in PyTorch (CPU, fp32).

The models mirror the .mp files op for op (docs/ops.md): the MLP is
784 -> linear 1024 -> relu -> linear 1024 -> relu -> linear 10 -> cross-entropy with SGD
(lr 0.05, momentum 0.9); the transformer is pre-LN blocks
x + attention(layernorm(x)), r + fc2(gelu_tanh(fc1(layernorm(r)))), a final layernorm and an
MSE loss, with AdamW (lr 3e-4, weight decay 0.1). Attention has the four biased projections
of mpcc's `attention` op and uses torch's scaled_dot_product_attention (what a PyTorch user
would write). Synthetic data is drawn once; each step is zero_grad, forward, backward and the
optimizer step (with --microbatches K: K forwards and backwards of batch/K samples, gradients
accumulated, as a trainer with train.microbatches = K does at one device). Prints the median, minimum and maximum step time over --steps timed steps
after --warmup untimed ones, as one line `torch <model> median_ms min_ms max_ms`.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.h1 = nn.Linear(784, 1024)
        self.h2 = nn.Linear(1024, 1024)
        self.out = nn.Linear(1024, 10)

    def forward(self, x):
        return self.out(F.relu(self.h2(F.relu(self.h1(x)))))


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.o = nn.Linear(width, width)

    def forward(self, x):
        n, t, d = x.shape
        h = self.heads

        def split(y):
            return y.view(n, t, h, d // h).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                           is_causal=True)
        return self.o(y.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    def __init__(self, width, heads, hidden):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        r = x + self.attn(self.ln1(x))
        return r + self.fc2(F.gelu(self.fc1(self.ln2(r)), approximate="tanh"))


class Transformer(nn.Module):
    def __init__(self, width, heads, hidden, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, heads, hidden) for _ in range(blocks))
        self.ln = nn.LayerNorm(width)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.ln(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=["mlp", "transformer"])
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--microbatches", type=int, default=1,
                   help="split each batch into this many micro-batches and accumulate their "
                        "gradients before the step (what a trainer with train.microbatches > 1 "
                        "does at one device)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.model == "mlp":
        model = Mlp()
        x = torch.randn(a.batch, 784)
        y = torch.randint(0, 10, (a.batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loss_fn = F.cross_entropy
    else:
        model = Transformer(a.width, a.heads, a.hidden, a.blocks)
        x = torch.randn(a.batch, a.seq, a.width)
        y = torch.randn(a.batch, a.seq, a.width)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
        loss_fn = F.mse_loss
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = 0
        for xm, ym in zip(x.chunk(a.microbatches), y.chunk(a.microbatches)):
            part = loss_fn(model(xm), ym) / a.microbatches
            part.backward()
            loss = loss + part.detach()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
    ms = [t * 1e3 for t in times]
    print(f"torch {a.model} {statistics.median(ms):.3f} {min(ms):.3f} {max(ms):.3f} "
          f"(final loss {loss.item():.6f}, torch {torch.__version__}, threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
