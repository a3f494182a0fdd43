#!/usr/bin/env python3
"""Independent PyTorch reference of VAPT (vapt_davpt.md §1a), written from the spec.

Static prompts before block 0; before block l >= 1 the prompt slots are replaced by
P = G + W2·relu(W1·G), G = Linear_l(conv_K(LN_l(patches) as a (D, g, g) map, one kernel shared by
every channel)) over the spatial positions. The token-wise Linear is set to non-zero values here,
so every generator tensor gets a gradient. vapt_reference.npz: dropouts 0. vapt_dropout_reference.npz:
prompt dropout 0.3 on the static prompts expanded to the batch, channel dropout (Dropout2d) 0.2 on the
convolution's output, dropout 0.25 after the projector's ReLU, their masks recorded for replay.

    /usr/bin/python3 tests/reference/vapt_reference.py tests/Peft.Plugins.Vapt.Tests/Fixtures
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_reference import SPEC, RecordedDropout, block, embed, final_norm, make_weights, save_method_fixture  # noqa: E402

P, K, R, CLASSES, BATCH = 3, 2, 4, 5, 4
PROMPT_DROPOUT, CONV_DROPOUT, MLP_DROPOUT = 0.3, 0.2, 0.25


def no_dropout(t, p, channelwise=False):
    return t


def generate(params, l, patches, s, drop=no_dropout):
    b, n, d = patches.shape
    g = int(round(n ** 0.5))
    t = F.layer_norm(patches, (d,), params[f"generators.{l}.norm.weight"], params[f"generators.{l}.norm.bias"], 1e-5)
    fm = t.transpose(1, 2).reshape(b, d, g, g)
    conv = drop(F.conv2d(fm, params[f"generators.{l}.kernel"].expand(d, 1, K, K), groups=d), CONV_DROPOUT, channelwise=True)
    G = F.linear(conv.flatten(2), params[f"generators.{l}.token_proj.weight"], params[f"generators.{l}.token_proj.bias"]).transpose(1, 2)
    return G + F.linear(drop(F.relu(F.linear(G, params["projector.fc1.weight"])), MLP_DROPOUT), params["projector.fc2.weight"])


def forward(w, s, x, params, drop=no_dropout):
    t = embed(w, s, x)
    t = torch.cat([t[:, :1], drop(params["prompt_embeddings"].expand(x.shape[0], -1, -1), PROMPT_DROPOUT), t[:, 1:]], dim=1)
    for i in range(s["depth"]):
        if i > 0:
            t = torch.cat([t[:, :1], generate(params, i - 1, t[:, 1 + P:], s, drop), t[:, 1 + P:]], dim=1)
        t = block(w, s, i, t)
    return F.linear(final_norm(w, s, t)[:, 0], params["head.fc.weight"], params["head.fc.bias"])


def main(folder):
    s = SPEC
    w = make_weights(s)  # the same weights as vit_reference.npz
    torch.manual_seed(99)
    x = torch.randn(BATCH, s["chans"], s["image"], s["image"])
    y = torch.tensor([0, 3, 1, 4])
    g = torch.Generator().manual_seed(13)
    d, side = s["dim"], s["image"] // s["patch"] - K + 1
    params = {"prompt_embeddings": (torch.rand(1, P, d, generator=g) * 2 - 1) * 0.2}
    for l in range(s["depth"] - 1):
        params[f"generators.{l}.norm.weight"] = 1 + 0.1 * torch.randn(d, generator=g)
        params[f"generators.{l}.norm.bias"] = 0.1 * torch.randn(d, generator=g)
        params[f"generators.{l}.kernel"] = torch.randn(1, 1, K, K, generator=g)
        params[f"generators.{l}.token_proj.weight"] = 0.2 * torch.randn(P, side * side, generator=g)
        params[f"generators.{l}.token_proj.bias"] = 0.1 * torch.randn(P, generator=g)
    params["projector.fc1.weight"] = torch.randn(R, d, generator=g) / d ** 0.5
    params["projector.fc2.weight"] = torch.randn(d, R, generator=g) / R ** 0.5
    params["head.fc.weight"] = torch.randn(CLASSES, d, generator=g) * 0.1
    params["head.fc.bias"] = torch.randn(CLASSES, generator=g) * 0.1

    def run(p, drop=no_dropout):
        logits = forward(w, s, x, p, drop)
        return logits, F.cross_entropy(logits, y)

    save_method_fixture(os.path.join(folder, "vapt_reference.npz"), params, run, x, y)
    dropout = RecordedDropout(seed=41)
    save_method_fixture(os.path.join(folder, "vapt_dropout_reference.npz"), {k: v.detach().clone() for k, v in params.items()},
                        lambda p: run(p, dropout), x, y, dropout=dropout)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
