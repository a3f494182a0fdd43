#!/usr/bin/env python3
"""The PyTorch-eager side of `peft bench speed`: one method on ViT-S/16 or ViT-B/16 (224 px, random weights),
timed training and evaluation steps, and peak resident memory, printed as one JSON object.

It reuses the parity references (vit_reference, vpt/gated/vapt/davpt_reference): the same functional model and
method code the C# parity tests compare against, sized like the real backbones and the methods' default options,
trained with each method's own optimizer. Run by `peft bench speed`, or by hand:

    /usr/bin/python3 tests/reference/speed_reference.py --model vit-b16 --method vapt --steps 3 --threads 2
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import davpt_reference  # noqa: E402
import gated_reference  # noqa: E402
import vapt_reference  # noqa: E402
import vit_reference  # noqa: E402
import vpt_reference  # noqa: E402
from vit_reference import block, embed, final_norm  # noqa: E402

MODELS = {
    "vit-s16": dict(image=224, patch=16, chans=3, dim=384, depth=12, heads=6, mlp=4.0, eps=1e-6),
    "vit-b16": dict(image=224, patch=16, chans=3, dim=768, depth=12, heads=12, mlp=4.0, eps=1e-6),
}
PROMPTS = 10           # VPT, GatedPT and VAPT default prompt length
GUIDED, OTHER = 10, 20  # DA-VPT prompts in the guided (last) block and in the others
DROPOUT = 0.1          # prompt dropout of VPT, GatedPT and VAPT by default


def weights(s, classes):
    w = vit_reference.make_weights(dict(s, classes=classes))
    return {k: v.contiguous() for k, v in w.items()}


def build(method, s, classes):
    """(trainable tensors by name, logits-and-loss function, optimizer) for one method with its defaults."""
    d, depth = s["dim"], s["depth"]
    w = weights(s, classes)
    head = {"head.weight": w.pop("head.weight"), "head.bias": w.pop("head.bias")}
    params = dict(head)

    def uniform(*shape):
        return (torch.rand(*shape) * 2 - 1) * 0.1

    if method in ("linear", "full", "bias"):
        if method == "full":
            params.update(w)
        elif method == "bias":
            params.update({k: v for k, v in w.items() if k.endswith(".bias")})

        def run(x, y):
            if method == "linear":
                with torch.no_grad():
                    pooled = vit_reference.forward(dict(w, **head), s, x)[0]
            else:
                pooled = vit_reference.forward(dict(w, **head), s, x)[0]
            logits = F.linear(pooled, head["head.weight"], head["head.bias"])
            return logits, F.cross_entropy(logits, y)
    elif method in ("vpt-shallow", "vpt-deep"):
        vpt_reference.P = PROMPTS
        params["shallow"] = uniform(1, PROMPTS, d)
        if method == "vpt-deep":
            params["deep"] = uniform(depth - 1, PROMPTS, d)

        def run(x, y):
            # VPT's recipe: prompt dropout 0.1 for deep, none for shallow.
            shallow = F.dropout(params["shallow"], DROPOUT if "deep" in params else 0.0, True)
            deep = F.dropout(params["deep"], DROPOUT, True) if "deep" in params else None
            logits = vpt_reference.vpt_forward(w, s, x, shallow, deep, params["head.weight"], params["head.bias"])
            return logits, F.cross_entropy(logits, y)
    elif method == "gated":
        gated_reference.P = PROMPTS
        params.update({"prompts": uniform(1, PROMPTS, d), "gate_logit": torch.full((depth - 1,), -5.0), "temp": torch.ones(depth)})

        def run(x, y):
            logits = gated_reference.gated_forward(w, s, x, F.dropout(params["prompts"], DROPOUT, True), params["gate_logit"], params["temp"],
                                                   params["head.weight"], params["head.bias"], "cls")
            return logits, F.cross_entropy(logits, y)
    elif method == "vapt":
        vapt_reference.P, vapt_reference.K = PROMPTS, 2
        side = s["image"] // s["patch"] - 2 + 1
        params["prompt_embeddings"] = torch.zeros(1, PROMPTS, d)
        for l in range(depth - 1):
            params[f"generators.{l}.norm.weight"] = torch.ones(d)
            params[f"generators.{l}.norm.bias"] = torch.zeros(d)
            params[f"generators.{l}.kernel"] = torch.randn(1, 1, 2, 2)
            params[f"generators.{l}.token_proj.weight"] = torch.zeros(PROMPTS, side * side)
            params[f"generators.{l}.token_proj.bias"] = torch.zeros(PROMPTS)
        params["projector.fc1.weight"] = torch.randn(8, d) / math.sqrt(d)
        params["projector.fc2.weight"] = torch.zeros(d, 8)
        params["head.fc.weight"], params["head.fc.bias"] = params.pop("head.weight"), params.pop("head.bias")

        def run(x, y):
            p = dict(params, prompt_embeddings=F.dropout(params["prompt_embeddings"], DROPOUT, True))
            logits = vapt_reference.forward(w, s, x, p)
            return logits, F.cross_entropy(logits, y)
    elif method in ("davpt", "davpt+"):
        davpt_reference.GUIDED, davpt_reference.M, davpt_reference.MO = depth - 1, GUIDED, OTHER
        davpt_reference.MAPPING = torch.arange(classes) % GUIDED
        davpt_reference.BETA, davpt_reference.LAMBDA, davpt_reference.RHO = 0.05, 0.05, 1.0
        prompts = [uniform(1, GUIDED if l == depth - 1 else OTHER, d) for l in range(depth)]
        for l, p in enumerate(prompts):
            params[f"prompts.{l}"] = p
        if method == "davpt+":
            # b_K and b_V deltas per block (the fused qkv bias gets them through a hook) and the CLS token.
            for i in range(depth):
                params[f"kv_delta.{i}"] = torch.zeros(2 * d)
            params["cls_token"] = w["cls_token"].clone()

        def run(x, y):
            ww = w
            if method == "davpt+":
                ww = dict(w, cls_token=params["cls_token"])
                for i in range(depth):
                    key = f"blocks.{i}.attn.qkv.bias"
                    ww[key] = w[key] + torch.cat([torch.zeros(d), params[f"kv_delta.{i}"]])
            return davpt_reference.forward(ww, s, x, y, [params[f"prompts.{l}"] for l in range(depth)], params["head.weight"], params["head.bias"],
                                           "attention")
    else:
        raise SystemExit(f"unknown method {method}")

    for p in params.values():
        p.requires_grad_(True)
    # Each method's recipe: VPT family SGD (momentum 0.9; lr irrelevant to speed), DA-VPT AdamW, full SGD.
    if method.startswith("davpt"):
        optimizer = torch.optim.AdamW(list(params.values()), lr=1e-3, weight_decay=0.05)
    else:
        optimizer = torch.optim.SGD(list(params.values()), lr=0.01, momentum=0.9, weight_decay=1e-4)
    return params, run, optimizer, w, head


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit-s16", choices=sorted(MODELS))
    ap.add_argument("--method", default="vapt")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--eval-steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    s = MODELS[a.model]
    params, run, optimizer, _, _ = build(a.method, s, a.classes)
    x = torch.randn(a.batch, 3, s["image"], s["image"])
    y = torch.arange(a.batch) % a.classes

    train = []
    for step in range(a.warmup + a.steps):
        start = time.perf_counter()
        logits, loss = run(x, y)
        loss.backward()
        if a.method.startswith("davpt"):
            torch.nn.utils.clip_grad_value_(list(params.values()), 10)
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
        float(loss)
        train.append(time.perf_counter() - start)
    evals = []
    with torch.no_grad():
        for step in range(1 + a.eval_steps):
            start = time.perf_counter()
            logits, _ = run(x, y)
            logits.argmax(1)
            evals.append(time.perf_counter() - start)
    train_s = statistics.median(train[a.warmup:])
    eval_s = statistics.median(evals[1:])
    result = {
        "framework": f"pytorch {torch.__version__}", "model": a.model, "method": a.method, "batch": a.batch, "threads": torch.get_num_threads(),
        "trainStepSeconds": train_s, "evalStepSeconds": eval_s, "trainImagesPerSecond": a.batch / train_s, "evalImagesPerSecond": a.batch / eval_s,
        "peakResidentBytes": peak_rss_bytes(), "trainableParameters": sum(p.numel() for p in params.values()),
        "trainStepsSeconds": train, "evalStepsSeconds": evals,
    }
    text = json.dumps(result, indent=2)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
