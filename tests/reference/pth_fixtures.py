#!/usr/bin/env python3
"""Official PyTorch checkpoint layouts, written by torch.save from real torch.nn modules, for the C# loader's tests.

The backbone is the reference ViT of vit_reference.py cut to its first block (every key pattern of a ViT, two fifths
of the bytes), with its weights read from vit_reference.npz, so the tests compare what they load bit for bit with the
same arrays. Written here:

  mae_pretrain_reference.pth        MAE's released pretrain file: {"model": state_dict} of MaskedAutoencoderViT
                                    (encoder under timm's keys, plus mask_token, decoder_pos_embed, decoder_*).
  moco_v3_reference.pth.tar         MoCo v3's training checkpoint: {"epoch", "arch", "state_dict", "optimizer",
                                    "scaler"}; the state dict of the DDP-wrapped MoCo model (module.base_encoder.*,
                                    module.momentum_encoder.*, module.predictor.*), the optimizer's a real AdamW
                                    state_dict() after one step.
  timm_reference/pytorch_model.bin  timm's export: the bare OrderedDict state dict (with its _metadata), head included.
  unsafe_os_system.pth              a torch.save file whose unpickling calls os.system("touch MARKER").
  whole_module.pth                  torch.save(module) rather than its state dict: pickles the module's class.
  legacy_format.pth                 the pre-1.6 format (_use_new_zipfile_serialization=False), which is not a zip.

Every file is checked here: torch.load reads the state-dict files back bit for bit (with weights_only=True, but for
MoCo's, whose floats 1.13's restricted unpickler cannot read); weights_only=True refuses the two that name code; and
plain torch.load of the unsafe file, in another process, really runs its command (the marker appears, and is removed
again). The MoCo file is the size of one encoder: its momentum encoder shares the base encoder's storages. Run once with Debian's python3-torch; the outputs are committed and CI needs no Python:

    /usr/bin/python3 tests/reference/pth_fixtures.py tests/Peft.Vision.Tests/Fixtures
"""
import collections
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import torch
from torch import nn

MARKER = "/tmp/peft-unsafe-checkpoint-ran"   # tests/Peft.Vision.Tests/PyTorchCheckpointTests.cs names it too
DEPTH = 1


# ---- the modules, with the attribute names (hence state-dict keys) of timm, MAE and MoCo v3 -----------------------

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """timm's VisionTransformer: state-dict order cls_token, pos_embed, patch_embed, blocks, norm, head."""

    def __init__(self, s, depth, classes):
        super().__init__()
        d, n = s["dim"], (s["image"] // s["patch"]) ** 2
        self.patch_embed = PatchEmbed(s["patch"], s["chans"], d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, d))
        self.blocks = nn.ModuleList([Block(d, s["heads"], s["mlp"], s["eps"]) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=s["eps"])
        self.head = nn.Linear(d, classes) if classes else nn.Identity()

    def forward_features(self, x):
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), t], dim=1) + self.pos_embed
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)[:, 0]

    def forward(self, x):
        return self.head(self.forward_features(x))


class MaskedAutoencoderViT(VisionTransformer):
    """MAE's models_mae.py: the encoder, then decoder_embed, mask_token, decoder_pos_embed, decoder_blocks,
    decoder_norm, decoder_pred (pos embeds fixed, as MAE's sin-cos tables are)."""

    def __init__(self, s, depth, decoder_dim=16, decoder_heads=2):
        super().__init__(s, depth, classes=0)
        n = (s["image"] // s["patch"]) ** 2
        self.pos_embed.requires_grad = False
        self.decoder_embed = nn.Linear(s["dim"], decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim) * 0.02)
        self.decoder_pos_embed = nn.Parameter(torch.randn(1, 1 + n, decoder_dim) * 0.02, requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_dim, decoder_heads, s["mlp"], s["eps"])])
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=s["eps"])
        self.decoder_pred = nn.Linear(decoder_dim, s["patch"] ** 2 * s["chans"])


def build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    """MoCo v3's moco/builder.py _build_mlp."""
    mlp = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        elif last_bn:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


class MoCoViT(nn.Module):
    """MoCo v3's MoCo_ViT: base and momentum encoders with a 3-layer projector as their head, a 2-layer predictor."""

    def __init__(self, s, depth, dim=16, mlp_dim=32):
        super().__init__()
        self.base_encoder = VisionTransformer(s, depth, classes=0)
        self.momentum_encoder = VisionTransformer(s, depth, classes=0)
        for encoder in (self.base_encoder, self.momentum_encoder):
            encoder.pos_embed.requires_grad = False   # MoCo v3's fixed sin-cos position embedding
            encoder.head = build_mlp(3, s["dim"], mlp_dim, dim)
        self.predictor = build_mlp(2, dim, mlp_dim, dim, False)
        # builder.py copies the base encoder into the momentum encoder (param_m.data.copy_(param_b.data)). Here the
        # momentum encoder's parameters take the base encoder's storages instead: the same values, and torch.save
        # writes each storage once, which keeps the fixture at one encoder's size.
        for param_b, param_m in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            param_m.data = param_b.data
            param_m.requires_grad = False


# ---- weights and files -------------------------------------------------------------------------------------------

def reference(npz_path):
    arrays = np.load(npz_path)
    sp = arrays["spec"]
    spec = dict(image=int(sp[0]), patch=int(sp[1]), chans=int(sp[2]), dim=int(sp[3]), heads=int(sp[5]), mlp=float(sp[6]),
                eps=1e-6)
    return spec, {k: torch.from_numpy(arrays[k].copy()) for k in arrays.files}


def load_reference(module, weights, keys):
    """Copies the reference arrays into the module's tensors of these keys (all of them, or it fails)."""
    own = module.state_dict()
    missing = [k for k in keys if k not in weights or k not in own]
    if missing:
        raise SystemExit(f"{type(module).__name__}: no reference weight or no tensor for {missing}")
    with torch.no_grad():
        for k in keys:
            own[k].copy_(weights[k])


class RunsAShellCommand:
    """Unpickles as os.system(...) (pickle records posix.system): what weights_only=True exists to refuse."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def assert_same(expected, loaded, path):
    for k, v in expected.items():
        if not torch.equal(v, loaded[k]):
            raise SystemExit(f"{path}: '{k}' does not read back")


def main(folder):
    torch.manual_seed(4321)
    spec, weights = reference(os.path.join(folder, "vit_reference.npz"))
    classes = weights["head.weight"].shape[0]
    encoder_keys = list(VisionTransformer(spec, DEPTH, classes=0).state_dict())

    # (a) MAE: {"model": model.state_dict()} with the decoder and the mask token.
    mae = MaskedAutoencoderViT(spec, DEPTH)
    load_reference(mae, weights, encoder_keys)
    mae_path = os.path.join(folder, "mae_pretrain_reference.pth")
    torch.save({"model": mae.state_dict()}, mae_path)
    assert_same(mae.state_dict(), torch.load(mae_path, weights_only=True)["model"], mae_path)

    # (b) MoCo v3: the DDP-wrapped model's state dict (module.*), a real AdamW state after one step, MoCo's other keys.
    moco = MoCoViT(spec, DEPTH)
    load_reference(moco.base_encoder, weights, encoder_keys)
    wrapped = nn.DataParallel(moco)       # no GPU: keeps the module as is, and its state dict says "module." as DDP's
    optimizer = torch.optim.AdamW(moco.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.1)
    loss = moco.predictor(torch.randn(4, 16)).pow(2).mean()      # a step that moves the predictor only
    loss.backward()
    optimizer.step()
    moco_path = os.path.join(folder, "moco_v3_reference.pth.tar")
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 0}
    torch.save({"epoch": 300, "arch": "vit_small", "state_dict": wrapped.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler}, moco_path)
    loaded = torch.load(moco_path)      # 1.13's weights_only unpickler lacks BINFLOAT, which the optimizer's floats use
    assert_same(wrapped.state_dict(), loaded["state_dict"], moco_path)
    if not loaded["optimizer"]["state"]:
        raise SystemExit(f"{moco_path}: the optimizer has no state")

    # (c) timm: the bare state dict, head included.
    timm = VisionTransformer(spec, DEPTH, classes)
    load_reference(timm, weights, encoder_keys + ["head.weight", "head.bias"])
    os.makedirs(os.path.join(folder, "timm_reference"), exist_ok=True)
    timm_path = os.path.join(folder, "timm_reference", "pytorch_model.bin")
    torch.save(timm.state_dict(), timm_path)
    assert_same(timm.state_dict(), torch.load(timm_path, weights_only=True), timm_path)

    # (d) code: a pickle that calls os.system, and a whole module.
    unsafe_path = os.path.join(folder, "unsafe_os_system.pth")
    torch.save({"model": collections.OrderedDict(cls_token=weights["cls_token"]), "hook": RunsAShellCommand()}, unsafe_path)
    module_path = os.path.join(folder, "whole_module.pth")
    torch.save(nn.Linear(2, 2), module_path)
    for path in (unsafe_path, module_path):
        try:
            torch.load(path, weights_only=True)
            raise SystemExit(f"{path}: weights_only=True loaded it")
        except pickle.UnpicklingError:
            pass
    # The unsafe file is live: plain torch.load (another process, run from elsewhere) runs the command.
    if os.path.exists(MARKER):
        os.remove(MARKER)
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({os.path.abspath(unsafe_path)!r})"], check=True, cwd="/")
    if not os.path.exists(MARKER):
        raise SystemExit(f"{unsafe_path}: loading it did not run its command")
    os.remove(MARKER)

    # (e) the legacy format: a pickle stream, not a zip.
    legacy_path = os.path.join(folder, "legacy_format.pth")
    torch.save(collections.OrderedDict(cls_token=weights["cls_token"]), legacy_path, _use_new_zipfile_serialization=False)
    with open(legacy_path, "rb") as f:
        if f.read(2) != b"\x80\x02":
            raise SystemExit(f"{legacy_path}: not a legacy pickle")

    for path in (mae_path, moco_path, timm_path, unsafe_path, module_path, legacy_path):
        print(f"wrote {path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
