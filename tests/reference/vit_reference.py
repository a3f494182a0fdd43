#!/usr/bin/env python3
"""Independent PyTorch reference of the timm-style ViT, written from the spec
(../shared/docs/reference/vpt_gated.md §1a, anchors.md §2), not from timm's code.

Writes a small fixture (.npz) with the weights under timm's key names, an input batch and the
reference outputs, which the C# tests compare against to 1e-5. Run once with Debian's python3-torch:

    /usr/bin/python3 tests/reference/vit_reference.py tests/Peft.Vision.Tests/Fixtures/vit_reference.npz
"""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(1234)

SPEC = dict(image=32, patch=8, chans=3, dim=48, depth=3, heads=3, mlp=4.0, classes=5, eps=1e-6)


def make_weights(s):
    d, hid, n = s["dim"], int(s["dim"] * s["mlp"]), (s["image"] // s["patch"]) ** 2
    w = {
        "patch_embed.proj.weight": torch.randn(d, s["chans"], s["patch"], s["patch"]) * 0.05,
        "patch_embed.proj.bias": torch.randn(d) * 0.02,
        "cls_token": torch.randn(1, 1, d) * 0.02,
        "pos_embed": torch.randn(1, 1 + n, d) * 0.02,
        "norm.weight": 1 + 0.1 * torch.randn(d),
        "norm.bias": 0.1 * torch.randn(d),
        "head.weight": torch.randn(s["classes"], d) * 0.05,
        "head.bias": torch.randn(s["classes"]) * 0.02,
    }
    for i in range(s["depth"]):
        p = f"blocks.{i}."
        w[p + "norm1.weight"] = 1 + 0.1 * torch.randn(d)
        w[p + "norm1.bias"] = 0.1 * torch.randn(d)
        w[p + "attn.qkv.weight"] = torch.randn(3 * d, d) / math.sqrt(d)
        w[p + "attn.qkv.bias"] = 0.02 * torch.randn(3 * d)
        w[p + "attn.proj.weight"] = torch.randn(d, d) / math.sqrt(d)
        w[p + "attn.proj.bias"] = 0.02 * torch.randn(d)
        w[p + "norm2.weight"] = 1 + 0.1 * torch.randn(d)
        w[p + "norm2.bias"] = 0.1 * torch.randn(d)
        w[p + "mlp.fc1.weight"] = torch.randn(hid, d) / math.sqrt(d)
        w[p + "mlp.fc1.bias"] = 0.02 * torch.randn(hid)
        w[p + "mlp.fc2.weight"] = torch.randn(d, hid) / math.sqrt(hid)
        w[p + "mlp.fc2.bias"] = 0.02 * torch.randn(d)
    return {k: v.float() for k, v in w.items()}


def embed(w, s, x):
    """Patch embedding (conv k = stride = patch), CLS in front, absolute position embedding."""
    t = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=s["patch"])
    t = t.flatten(2).transpose(1, 2)  # (B, N, D)
    cls = w["cls_token"].expand(x.shape[0], -1, -1)
    return torch.cat([cls, t], dim=1) + w["pos_embed"]


def attention(w, s, p, x, temperature=1.0, prefix=None):
    """Multi-head self-attention with one fused qkv projection (rows ordered q, k, v). `prefix`, when given, is a pair
    of (n, D) keys and values put before the tokens' own in every head (prefix tuning); the queries stay the tokens'."""
    b, t, d = x.shape
    h = s["heads"]
    qkv = F.linear(x, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"])
    q, k, v = qkv.reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
    if prefix is not None:
        pk, pv = (e.reshape(1, -1, h, d // h).transpose(1, 2).expand(b, -1, -1, -1) for e in prefix)
        k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
    logits = q @ k.transpose(-2, -1) / math.sqrt(d // h) / temperature
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
    return F.linear(out, w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])


def block(w, s, i, x, temperature=1.0, prefix=None):
    """Pre-norm block: x + Attn(LN1(x)), then + MLP(LN2(.)) with exact GELU; LayerNorm eps 1e-6."""
    p = f"blocks.{i}."
    d = s["dim"]
    x = x + attention(w, s, p, F.layer_norm(x, (d,), w[p + "norm1.weight"], w[p + "norm1.bias"], s["eps"]), temperature, prefix)
    hdn = F.layer_norm(x, (d,), w[p + "norm2.weight"], w[p + "norm2.bias"], s["eps"])
    hdn = F.gelu(F.linear(hdn, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"]))
    return x + F.linear(hdn, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])


def final_norm(w, s, x):
    return F.layer_norm(x, (s["dim"],), w["norm.weight"], w["norm.bias"], s["eps"])


def forward(w, s, x):
    t = embed(w, s, x)
    for i in range(s["depth"]):
        t = block(w, s, i, t)
    pooled = final_norm(w, s, t)[:, 0]
    return pooled, F.linear(pooled, w["head.weight"], w["head.bias"])


class RecordedDropout:
    """Dropout whose keep-masks are drawn here and written to the fixture, in the order they were drawn, so the C# side
    replays them (ReplayableDropout.MaskSource): libtorch 2.10 and PyTorch 1.13 do not draw the same Bernoulli numbers
    from one seed. Computed as torch's native dropout does: input · (mask / (1 − p)). `channelwise` draws one value
    per sample and channel of a (B, C, ...) input, as Dropout2d does."""

    def __init__(self, seed):
        self.generator = torch.Generator().manual_seed(seed)
        self.masks = []

    def __call__(self, t, p, channelwise=False):
        if p == 0:
            return t
        shape = tuple(t.shape[:2]) + (1,) * (t.dim() - 2) if channelwise else tuple(t.shape)
        mask = torch.bernoulli(torch.full(shape, 1 - p), generator=self.generator)
        self.masks.append((mask, p))
        return t * (mask / (1 - p))

    def arrays(self):
        """mask/NNN (0/1, float32) and mask_rate/NNN (its p, float64), NNN in drawing order."""
        out = {}
        for i, (mask, p) in enumerate(self.masks):
            out[f"mask/{i:03d}"] = mask
            out[f"mask_rate/{i:03d}"] = torch.tensor([p], dtype=torch.float64)
        return out


def save_method_fixture(path, params, run, x, y, extra=None, dropout=None):
    """Runs `run(params) -> (logits, loss)` with gradients on every tensor of `params` and writes a method's
    fixture: param/<name>, grad/<name>, expected_logits, expected_loss, input, labels (and `extra`; with a
    RecordedDropout, the masks it drew during the run)."""
    for p in params.values():
        p.requires_grad_(True)
    logits, loss = run(params)
    loss.backward()
    out = {"expected_logits": logits.detach(), "expected_loss": loss.detach().reshape(1), "input": x, "labels": y, **(extra or {}),
           **(dropout.arrays() if dropout is not None else {})}
    for k, p in params.items():
        out["param/" + k] = p.detach()
        out["grad/" + k] = p.grad
    np.savez_compressed(path, **{k: v.numpy() for k, v in out.items()})
    print(f"wrote {path}: loss {loss.item():.6f}")


def main(path):
    s = SPEC
    w = make_weights(s)
    x = torch.randn(2, s["chans"], s["image"], s["image"])
    with torch.no_grad():
        pooled, logits = forward(w, s, x)
    out = {k: v.numpy() for k, v in w.items()}
    out["input"] = x.numpy()
    out["expected_pooled"] = pooled.numpy()
    out["expected_logits"] = logits.numpy()
    out["spec"] = np.array([s["image"], s["patch"], s["chans"], s["dim"], s["depth"], s["heads"], s["mlp"], s["classes"]], dtype=np.float64)
    np.savez(path, **out)
    print(f"wrote {path}: logits {logits.numpy().round(5).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "vit_reference.npz")
