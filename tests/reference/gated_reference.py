#!/usr/bin/env python3
"""Independent PyTorch reference of Gated Prompt Tuning (vpt_gated.md §2a), written from the spec.

Shallow prompts at the input; block i runs with softmax(q·kᵀ/√d_h / τ_i); after blocks 0..L-2 the
prompt slots become g·(output) + (1 − g)·(input), g = sigmoid(γ_i); the last block is ungated.
Read-out: "cls" (final norm, then CLS) and "mean" (mean of all non-CLS tokens, then the final norm).
Gates and temperatures are set to non-trivial values. Prompt dropout 0, and in
gated_cls_dropout_reference.npz 0.3 on the prompts expanded to the batch, its masks recorded for replay.

    /usr/bin/python3 tests/reference/gated_reference.py tests/Peft.Plugins.Gated.Tests/Fixtures
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_reference import SPEC, RecordedDropout, block, embed, final_norm, make_weights, save_method_fixture  # noqa: E402

P, CLASSES, BATCH, DROPOUT = 4, 5, 4, 0.3


def gated_forward(w, s, x, prompts, gate_logit, temp, head_w, head_b, readout, drop=None):
    drop = drop or (lambda t: t)
    t = embed(w, s, x)
    t = torch.cat([t[:, :1], drop(prompts.expand(x.shape[0], -1, -1)), t[:, 1:]], dim=1)
    for i in range(s["depth"]):
        before = t[:, 1:1 + P]
        t = block(w, s, i, t, temperature=temp[i])
        if i < s["depth"] - 1:
            g = torch.sigmoid(gate_logit[i])
            t = torch.cat([t[:, :1], g * t[:, 1:1 + P] + (1 - g) * before, t[:, 1 + P:]], dim=1)
    pooled = final_norm(w, s, t)[:, 0] if readout == "cls" else final_norm(w, s, t[:, 1:].mean(1))
    return F.linear(pooled, head_w, head_b)


def main(folder):
    s = SPEC
    w = make_weights(s)  # the same weights as vit_reference.npz
    torch.manual_seed(99)
    x = torch.randn(BATCH, s["chans"], s["image"], s["image"])
    y = torch.tensor([0, 3, 1, 4])
    for readout in ("cls", "mean"):
        g = torch.Generator().manual_seed(11)
        params = {
            "prompt_embeddings": (torch.rand(1, P, s["dim"], generator=g) * 2 - 1) * 0.2,
            "gate_logit": torch.randn(s["depth"] - 1, generator=g),
            "temp": 0.5 + torch.rand(s["depth"], generator=g),
            "head.fc.weight": torch.randn(CLASSES, s["dim"], generator=g) * 0.1,
            "head.fc.bias": torch.randn(CLASSES, generator=g) * 0.1,
        }

        def run(p, readout=readout, drop=None):
            logits = gated_forward(w, s, x, p["prompt_embeddings"], p["gate_logit"], p["temp"], p["head.fc.weight"], p["head.fc.bias"], readout, drop)
            return logits, F.cross_entropy(logits, y)

        save_method_fixture(os.path.join(folder, f"gated_{readout}_reference.npz"), params, run, x, y)
        if readout == "cls":
            dropout = RecordedDropout(seed=37)
            save_method_fixture(os.path.join(folder, "gated_cls_dropout_reference.npz"), {k: v.detach().clone() for k, v in params.items()},
                                lambda p: run(p, drop=lambda t: dropout(t, DROPOUT)), x, y, dropout=dropout)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
