"""GPT-2's forward pass in numpy (float64), reading a Hugging Face directory by GPT-2's names.

Written from GPT-2's definition as transformers' GPT2LMHeadModel computes it (Radford et al.
2019; the model card's config keys), independently of mpcc's kernels, so that
tests/e2e/hf_export.py can check what `--export-hf` wrote without torch:

  h = wte[tok] + wpe[0..T)
  per block:  a = ln_1(h);  q|k|v = a·c_attn.W + c_attn.b  (Conv1D: W is [in, out]);
              heads: columns split into n_head groups of n_embd/n_head;
              softmax(q·kᵀ/√(n_embd/n_head), causal) · v, heads merged, ·c_proj.W + c_proj.b;
              h += that;  h += c_proj(gelu_new(c_fc(ln_2(h))))
  logits = ln_f(h) · lm_headᵀ  (nn.Linear: lm_head.weight is [vocab, n_embd])
"""
import json
import os

import numpy as np

import e2e_common


def load(directory):
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    w, meta = e2e_common.read_safetensors(os.path.join(directory, "model.safetensors"))
    return cfg, w, meta


def layernorm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def attention(a, w, p, H):
    T, D = a.shape
    qkv = a @ w[p + "c_attn.weight"] + w[p + "c_attn.bias"]
    q, k, v = (qkv[:, i * D:(i + 1) * D].reshape(T, H, D // H).transpose(1, 0, 2) for i in range(3))
    s = q @ k.transpose(0, 2, 1) / np.sqrt(D // H)
    s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    y = (s / s.sum(-1, keepdims=True)) @ v
    return y.transpose(1, 0, 2).reshape(T, D) @ w[p + "c_proj.weight"] + w[p + "c_proj.bias"]


def logits(cfg, w, tokens):
    """[T, vocab] logits of one token sequence."""
    eps, H = cfg["layer_norm_epsilon"], cfg["n_head"]
    if cfg.get("activation_function") != "gelu_new":
        raise ValueError(f"activation {cfg.get('activation_function')}, expected gelu_new")
    tok = np.asarray(tokens)
    h = w["transformer.wte.weight"][tok] + w["transformer.wpe.weight"][: len(tok)]
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        a = layernorm(h, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        h = h + attention(a, w, p + "attn.", H)
        a = layernorm(h, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        a = gelu_new(a @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        h = h + a @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    h = layernorm(h, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    head = w["transformer.wte.weight"] if cfg.get("tie_word_embeddings", True) else w["lm_head.weight"]
    return h @ head.T
