#!/usr/bin/env python3
"""Independent PyTorch reference of VPT shallow and deep (vpt_gated.md §1a), written from the spec.

On the small reference ViT of vit_reference.py: prompts inserted after CLS once the position
embedding is added; deep prompts replace the previous block's prompt outputs before blocks 1..L-1;
read-out CLS after the final norm, then the linear head. Saves the prompts, inputs, labels, and the
expected logits, loss and gradients: vpt_{mode}_reference.npz with prompt dropout 0, and
vpt_{mode}_dropout_reference.npz with prompt dropout 0.3 on the prompts expanded to the batch (every
sample its own mask, as the official code does) at every insertion, its masks recorded for replay.

    /usr/bin/python3 tests/reference/vpt_reference.py tests/Peft.Plugins.Vpt.Tests/Fixtures
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_reference import SPEC, RecordedDropout, block, embed, final_norm, make_weights, save_method_fixture  # noqa: E402

P, CLASSES, BATCH, DROPOUT = 4, 5, 4, 0.3


def vpt_forward(w, s, x, shallow, deep, head_w, head_b, drop=None):
    drop = drop or (lambda t: t)
    t = embed(w, s, x)
    b = x.shape[0]
    t = torch.cat([t[:, :1], drop(shallow.expand(b, -1, -1)), t[:, 1:]], dim=1)
    for i in range(s["depth"]):
        if deep is not None and i > 0:
            t = torch.cat([t[:, :1], drop(deep[i - 1].unsqueeze(0).expand(b, -1, -1)), t[:, 1 + P:]], dim=1)
        t = block(w, s, i, t)
    pooled = final_norm(w, s, t)[:, 0]
    return F.linear(pooled, head_w, head_b)


def main(folder):
    s = SPEC
    w = make_weights(s)  # the same weights as vit_reference.npz; only the method's tensors are stored here
    torch.manual_seed(99)
    x = torch.randn(BATCH, s["chans"], s["image"], s["image"])
    y = torch.tensor([0, 3, 1, 4])
    for mode in ("shallow", "deep"):
        g = torch.Generator().manual_seed(7)
        params = {"prompt_embeddings": (torch.rand(1, P, s["dim"], generator=g) * 2 - 1) * 0.2}
        deep = (torch.rand(s["depth"] - 1, P, s["dim"], generator=g) * 2 - 1) * 0.2 if mode == "deep" else None
        params["head.fc.weight"] = torch.randn(CLASSES, s["dim"], generator=g) * 0.1
        params["head.fc.bias"] = torch.randn(CLASSES, generator=g) * 0.1
        if deep is not None:
            params["deep_prompt_embeddings"] = deep

        def run(p, drop=None):
            logits = vpt_forward(w, s, x, p["prompt_embeddings"], p.get("deep_prompt_embeddings"), p["head.fc.weight"], p["head.fc.bias"], drop)
            return logits, F.cross_entropy(logits, y)

        save_method_fixture(os.path.join(folder, f"vpt_{mode}_reference.npz"), params, run, x, y)
        dropout = RecordedDropout(seed=31)
        save_method_fixture(os.path.join(folder, f"vpt_{mode}_dropout_reference.npz"), {k: v.detach().clone() for k, v in params.items()},
                            lambda p: run(p, lambda t: dropout(t, DROPOUT)), x, y, dropout=dropout)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
