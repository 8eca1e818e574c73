"""examples/gpt.mp (GPT-2 small) in PyTorch on one GPU: step time and tokens/s, eager and
torch.compile, for scripts/gpu-check (docs/cuda.md).

The model mirrors the .mp file op for op (docs/ops.md): token + position embeddings
(50257 x 768, 1024 positions), 12 pre-LN blocks x + attention(layernorm(x)),
r + fc2(gelu_tanh(fc1(layernorm(r)))) with the four biased projections of mpcc's `attention`
op (causal, 12 heads; torch's scaled_dot_product_attention, what a PyTorch user writes), a
final layernorm, an untied LM head without bias and next-token cross-entropy over every
position; AdamW (lr 6e-4, betas 0.9/0.95, weight decay 0.1). The batch and micro-batches are
the trainer's (--batch 16 --microbatches 4: four forwards and backwards of 4 x 1024 tokens,
gradients accumulated, then one optimizer step). Precision: fp32 (full fp32 GEMMs) or tf32
(fp32 storage, TF32 tensor-core GEMMs), as the trainer without and with --tf32.

Each mode runs --warmup untimed steps (for torch.compile these include the compilation, whose
time is reported apart) and --steps timed steps, each ended by torch.cuda.synchronize().
Prints one JSON object per mode on its own line: mode, precision, median/min step ms, tokens/s,
warm-up seconds, the final loss and the torch version.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, WIDTH, HEADS, HIDDEN, BLOCKS, SEQ = 50257, 768, 12, 3072, 12, 1024


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(WIDTH, WIDTH) for _ in range(4))

    def forward(self, x):
        n, t, d = x.shape

        def split(y):
            return y.view(n, t, HEADS, d // HEADS).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                           is_causal=True)
        return self.o(y.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.attn = Attention()
        self.fc1, self.fc2 = nn.Linear(WIDTH, HIDDEN), nn.Linear(HIDDEN, WIDTH)

    def forward(self, x):
        r = x + self.attn(self.ln1(x))
        return r + self.fc2(F.gelu(self.fc1(self.ln2(r)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, WIDTH)
        self.wpe = nn.Parameter(torch.randn(SEQ, WIDTH) * 0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.lnf = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)

    def forward(self, tok, nxt):
        x = self.wte(tok) + self.wpe
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.lnf(x))
        return F.cross_entropy(logits.view(-1, VOCAB), nxt.view(-1))


def run(mode, a, dev):
    torch.manual_seed(1)
    model = Gpt().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    step_fn = torch.compile(model) if mode == "compile" else model
    tok = torch.randint(0, VOCAB, (a.batch, SEQ), device=dev)
    nxt = torch.randint(0, VOCAB, (a.batch, SEQ), device=dev)
    times, loss, warm_s = [], 0.0, 0.0
    t_warm = time.perf_counter()
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            warm_s = time.perf_counter() - t_warm
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=dev)
        for tm, nm in zip(tok.chunk(a.microbatches), nxt.chunk(a.microbatches)):
            part = step_fn(tm, nm) / a.microbatches
            part.backward()
            total += part.detach()
        opt.step()
        torch.cuda.synchronize()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
        loss = float(total)
    ms = [t * 1e3 for t in times]
    med = statistics.median(ms)
    return {"mode": mode, "precision": a.precision, "batch": a.batch, "microbatches": a.microbatches,
            "steps": a.steps, "median_ms": round(med, 3), "min_ms": round(min(ms), 3),
            "tokens_per_s": round(a.batch * SEQ / (med / 1e3), 1), "warmup_s": round(warm_s, 2),
            "final_loss": loss, "torch": torch.__version__, "gpu": torch.cuda.get_device_name(dev)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--microbatches", type=int, default=4)
    p.add_argument("--precision", choices=["fp32", "tf32"], default="tf32")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 1 or a.batch % a.microbatches:
        p.error("--steps and --warmup must be at least 1 and --microbatches must divide --batch")
    if not torch.cuda.is_available():
        print(json.dumps({"error": f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) "
                                   "sees no CUDA device"}))
        raise SystemExit(77)
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    for mode in a.modes.split(","):
        try:
            r = run(mode, a, torch.device("cuda:0"))
        except Exception as e:  # report the mode's failure and go on to the next one
            r = {"mode": mode, "precision": a.precision, "error": f"{type(e).__name__}: {e}"[:500]}
        print(json.dumps(r), flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
