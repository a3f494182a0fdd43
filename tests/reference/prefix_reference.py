#!/usr/bin/env python3
"""Independent PyTorch reference of prefix tuning / key-value prompts on a ViT (Li & Liang, 2021, §4.2, as the
unified view of He et al., 2022, §2.2 writes it for attention: head_i = Attn(x W_q, [P_k; x W_k], [P_v; x W_v])).

On the small reference ViT of vit_reference.py: every block l has p learned keys P_k^l and values P_v^l (p, D), split
into heads like the tokens' own and put before them; the queries, and so the sequence, stay the tokens'. Read-out CLS
after the final norm, then the linear head. Saves the prefixes, head, inputs, labels, and the expected logits, loss
and gradients, for the drop-in plugin written outside the repository (tests/Peft.Host.Tests/ExternalPlugin).

    /usr/bin/python3 tests/reference/prefix_reference.py tests/Peft.Host.Tests/Fixtures
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_reference import SPEC, block, embed, final_norm, make_weights, save_method_fixture  # noqa: E402

P, CLASSES, BATCH = 3, 5, 4


def prefix_forward(w, s, x, keys, values, head_w, head_b):
    t = embed(w, s, x)
    for i in range(s["depth"]):
        t = block(w, s, i, t, prefix=(keys[i], values[i]))
    pooled = final_norm(w, s, t)[:, 0]
    return F.linear(pooled, head_w, head_b)


def main(folder):
    s = SPEC
    w = make_weights(s)  # the same weights as vit_reference.npz; only the method's tensors are stored here
    torch.manual_seed(99)
    x = torch.randn(BATCH, s["chans"], s["image"], s["image"])
    y = torch.tensor([0, 3, 1, 4])
    g = torch.Generator().manual_seed(11)
    params = {
        "prefix_keys": torch.randn(s["depth"], P, s["dim"], generator=g),
        "prefix_values": torch.randn(s["depth"], P, s["dim"], generator=g) * 0.5,
        "head.fc.weight": torch.randn(CLASSES, s["dim"], generator=g) * 0.1,
        "head.fc.bias": torch.randn(CLASSES, generator=g) * 0.1,
    }

    def run(p):
        logits = prefix_forward(w, s, x, p["prefix_keys"], p["prefix_values"], p["head.fc.weight"], p["head.fc.bias"])
        return logits, F.cross_entropy(logits, y)

    save_method_fixture(os.path.join(folder, "prefix_reference.npz"), params, run, x, y)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
