#!/usr/bin/env python3
"""Independent PyTorch reference of DA-VPT's forward and losses (vapt_davpt.md §2a), from the spec.

VPT-deep prompts with per-block counts (guided block 2: M = 3 proxies, others M_o = 2); for a fixed
class → prompt mapping, per guided block: proxies ρ·P/‖P‖, token anchor = the attention output
(heads concatenated, before W_O) at the sample's mapped prompt position (or the mean block-input
patch token), CLS anchor = the CLS query W_Q·LN1(x_cls) + b_Q; Proxy-Anchor with α, δ;
total = CE + mean over guided blocks of (β·token + λ·CLS). Prompt dropout 0, and in
davpt_attention_dropout_reference.npz 0.3 on every block's prompts expanded to the batch (the proxies are
the undropped prompts), its masks recorded for replay.

DA-VPT+ (§2a, "efficient bias tuning"; paper §3.5, Table 4) also trains every block's key and value
biases, b_K and b_V (b_Q stays frozen), and the [CLS] token: here as deltas Δ_K, Δ_V added to the K and V
thirds of the pretrained fused qkv bias, and a CLS token taken from the trainables instead of the frozen
weights. Fixtures davpt_plus_{anchor}_reference.npz, with non-zero deltas and a CLS token away from the
pretrained one, so that each matters (the backbone tensor under its adapter name, backbone.cls_token).
Δ_K adds q·Δ_K to every logit of a query's row, which the softmax cancels: its gradient is 0 up to rounding.

    /usr/bin/python3 tests/reference/davpt_reference.py tests/Peft.Plugins.DaVpt.Tests/Fixtures
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit_reference import SPEC, RecordedDropout, embed, final_norm, make_weights, save_method_fixture  # noqa: E402

CLASSES, BATCH, GUIDED, M, MO = 5, 6, 2, 3, 2
ALPHA, DELTA, RHO, BETA, LAMBDA = 32.0, 0.1, 2.0, 0.5, 0.3
DROPOUT = 0.3
MAPPING = torch.tensor([0, 2, 1, 0, 2])  # class -> prompt (proxy 1 has a single class)


def block_with_features(w, s, i, x, key_delta=None, value_delta=None):
    """The pre-norm block, also returning the query vectors and the attention output before W_O. DA-VPT+: the qkv
    bias is [b_Q, b_K + Δ_K, b_V + Δ_V] (rows ordered q, k, v)."""
    p, d, h = f"blocks.{i}.", s["dim"], s["heads"]
    b, t, _ = x.shape
    n1 = F.layer_norm(x, (d,), w[p + "norm1.weight"], w[p + "norm1.bias"], s["eps"])
    bias = w[p + "attn.qkv.bias"]
    if key_delta is not None:
        b_q, b_k, b_v = bias.split(d)
        bias = torch.cat([b_q, b_k + key_delta, b_v + value_delta])
    qkv = F.linear(n1, w[p + "attn.qkv.weight"], bias)
    query = qkv[..., :d]
    q, k, v = qkv.reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) / math.sqrt(d // h)).softmax(-1)
    out = (attn @ v).transpose(1, 2).reshape(b, t, d)
    x = x + F.linear(out, w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
    n2 = F.layer_norm(x, (d,), w[p + "norm2.weight"], w[p + "norm2.bias"], s["eps"])
    x = x + F.linear(F.gelu(F.linear(n2, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])), w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
    return x, query, out


def proxy_anchor(anchors, proxies, mapped):
    s = anchors @ proxies.t()
    pos = F.one_hot(mapped, proxies.shape[0]).float()
    pos_term = torch.log(1 + (torch.exp(-ALPHA * (s - DELTA)) * pos).sum(0)).sum() / proxies.shape[0]
    neg_term = torch.log(1 + (torch.exp(ALPHA * (s + DELTA)) * (1 - pos)).sum(0)).sum() / proxies.shape[0]
    return pos_term + neg_term


def forward(w, s, x, y, prompts, head_w, head_b, anchor, key_biases=None, value_biases=None, cls=None, drop=None):
    drop = drop or (lambda t: t)
    counts = [M if l == GUIDED else MO for l in range(s["depth"])]
    t = embed(w if cls is None else {**w, "cls_token": cls}, s, x)
    b = x.shape[0]
    t = torch.cat([t[:, :1], drop(prompts[0].expand(b, -1, -1)), t[:, 1:]], dim=1)
    aux = []
    for l in range(s["depth"]):
        if l > 0:
            t = torch.cat([t[:, :1], drop(prompts[l].expand(b, -1, -1)), t[:, 1 + counts[l - 1]:]], dim=1)
        block_input = t
        t, query, out = block_with_features(w, s, l, t, *((key_biases[l], value_biases[l]) if key_biases else ()))
        if l == GUIDED:
            mapped = MAPPING[y]
            proxies = RHO * F.normalize(prompts[l][0], dim=1)
            if anchor == "attention":
                token = out[torch.arange(b), 1 + mapped]
            else:
                token = block_input[:, 1 + counts[l]:].mean(1)
            aux.append(BETA * proxy_anchor(F.normalize(token, dim=1), proxies, mapped)
                       + LAMBDA * proxy_anchor(F.normalize(query[:, 0], dim=1), proxies, mapped))
    logits = F.linear(final_norm(w, s, t)[:, 0], head_w, head_b)
    return logits, F.cross_entropy(logits, y) + sum(aux) / len(aux)


def main(folder):
    s = SPEC
    w = make_weights(s)  # the same weights as vit_reference.npz
    torch.manual_seed(99)
    x = torch.randn(BATCH, s["chans"], s["image"], s["image"])
    y = torch.tensor([0, 0, 3, 1, 4, 2])
    for anchor in ("attention", "meanpatch"):
        g = torch.Generator().manual_seed(17)
        params = {f"prompt_embeddings_{l}": (torch.rand(1, M if l == GUIDED else MO, s["dim"], generator=g) * 2 - 1) * 0.3
                  for l in range(s["depth"])}
        params["head.fc.weight"] = torch.randn(CLASSES, s["dim"], generator=g) * 0.1
        params["head.fc.bias"] = torch.randn(CLASSES, generator=g) * 0.1

        def run(p, anchor=anchor):
            return forward(w, s, x, y, [p[f"prompt_embeddings_{l}"] for l in range(s["depth"])], p["head.fc.weight"], p["head.fc.bias"], anchor)

        save_method_fixture(os.path.join(folder, f"davpt_{anchor}_reference.npz"), params, run, x, y,
                            extra={"param/class_to_prompt": MAPPING})
        if anchor == "attention":
            dropout = RecordedDropout(seed=43)

            def run_dropout(p):
                return forward(w, s, x, y, [p[f"prompt_embeddings_{l}"] for l in range(s["depth"])], p["head.fc.weight"], p["head.fc.bias"], anchor,
                               drop=lambda t: dropout(t, DROPOUT))

            save_method_fixture(os.path.join(folder, "davpt_attention_dropout_reference.npz"), {k: v.detach().clone() for k, v in params.items()},
                                run_dropout, x, y, extra={"param/class_to_prompt": MAPPING}, dropout=dropout)

        # DA-VPT+: the same prompts and head, plus per-block Δ_K, Δ_V and the CLS token, all trained.
        g = torch.Generator().manual_seed(23)
        plus = {k: v.detach().clone() for k, v in params.items()}
        for l in range(s["depth"]):
            plus[f"key_bias_{l}"] = torch.randn(s["dim"], generator=g) * 0.3
            plus[f"value_bias_{l}"] = torch.randn(s["dim"], generator=g) * 0.3
        plus["backbone.cls_token"] = w["cls_token"] + torch.randn(1, 1, s["dim"], generator=g) * 0.5

        def run_plus(p, anchor=anchor):
            return forward(w, s, x, y, [p[f"prompt_embeddings_{l}"] for l in range(s["depth"])], p["head.fc.weight"], p["head.fc.bias"], anchor,
                           [p[f"key_bias_{l}"] for l in range(s["depth"])], [p[f"value_bias_{l}"] for l in range(s["depth"])], p["backbone.cls_token"])

        save_method_fixture(os.path.join(folder, f"davpt_plus_{anchor}_reference.npz"), plus, run_plus, x, y,
                            extra={"param/class_to_prompt": MAPPING})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
