using System.Security.Cryptography;
using Peft.Abstractions.Backbone;
using Peft.Torch;
using static Peft.Torch.torch;
using F = Peft.Torch.torch.nn.functional;

namespace Peft.Vision;

/// <summary>
/// A Vision Transformer with timm's structure and parameter names, read top to bottom:
/// PatchEmbed → CLS + position embedding → pre-norm Blocks → final norm. LayerNorm eps 1e-6 and
/// exact (erf) GELU, as timm and the VPT family use. The forward pass is cut at timm's seams
/// (<see cref="Embed"/>, <see cref="Block"/>, <see cref="FinalNorm"/>) so prompt methods hook in between.
/// </summary>
public sealed class VisionTransformer : nn.Module, IVisionBackbone
{
    public VitSpec Spec { get; }
    public BackboneKind Kind { get; set; }
    public PatchEmbed patch_embed { get; }
    public nn.Parameter cls_token { get; }
    public nn.Parameter pos_embed { get; }
    public nn.ModuleList<Block> blocks { get; }
    public nn.LayerNorm norm { get; }
    private readonly nn.Dropout _posDrop;

    /// <param name="dropRate">Dropout after the position embedding and in the MLPs (active only in train mode: full fine-tuning).</param>
    public VisionTransformer(VitSpec spec, BackboneKind kind = BackboneKind.Supervised, double dropRate = 0.0)
    {
        if (spec.Dim % spec.Heads != 0) throw new ArgumentException($"{spec.Heads} heads do not divide width {spec.Dim}");
        if (spec.ImageSize % spec.PatchSize != 0) throw new ArgumentException($"patch {spec.PatchSize} does not divide image {spec.ImageSize}");
        Spec = spec;
        Kind = kind;
        patch_embed = RegisterModule("patch_embed", new PatchEmbed(spec));
        cls_token = RegisterParameter("cls_token", new nn.Parameter(zeros(1, 1, spec.Dim)));
        pos_embed = RegisterParameter("pos_embed", new nn.Parameter(zeros(1, 1 + spec.NumPatches, spec.Dim)));
        _posDrop = RegisterModule("pos_drop", new nn.Dropout(dropRate));
        blocks = RegisterModule("blocks", new nn.ModuleList<Block>(Enumerable.Range(0, spec.Depth).Select(_ => new Block(spec, dropRate))));
        norm = RegisterModule("norm", new nn.LayerNorm([spec.Dim], spec.LayerNormEps));
        InitWeights();
    }

    /// <summary>timm's default init: trunc-normal(0.02) for pos_embed and Linear weights, zero biases, N(0, 1e-6) for CLS.</summary>
    private void InitWeights()
    {
        nn.init.trunc_normal_(pos_embed, std: 0.02);
        nn.init.normal_(cls_token, std: 1e-6);
        foreach (var (name, p) in named_parameters())
        {
            if (!name.StartsWith("blocks.", StringComparison.Ordinal)) continue;
            if (name.EndsWith(".weight", StringComparison.Ordinal) && p.dim() == 2) nn.init.trunc_normal_(p, std: 0.02);
            else if (name.EndsWith(".bias", StringComparison.Ordinal) && !name.Contains("norm", StringComparison.Ordinal)) nn.init.zeros_(p);
        }
    }

    nn.Module IVisionBackbone.Module => this;

    /// <summary>SHA-256 (16 hex digits) over every parameter's name, shape, dtype and bytes.</summary>
    public string Identity => _identity ??= ComputeIdentity();
    private string? _identity;

    /// <summary>Forgets the cached identity (after loading new weights).</summary>
    public void InvalidateIdentity() => _identity = null;

    private string ComputeIdentity()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var state = state_dict();
        // One buffer for every tensor: a fresh array per tensor would leave a model-sized heap of garbage behind.
        var buffer = new byte[state.Max(kv => kv.Value.numel() * kv.Value.dtype.ElementSize())];
        foreach (var (name, t) in state)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{name}:{t.dtype.Name()}:{t.ShapeString};"));
            var bytes = buffer.AsSpan(0, (int)(t.numel() * t.dtype.ElementSize()));
            t.CopyBytesTo(bytes);
            hash.AppendData(bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    public Tensor Embed(Tensor images)
    {
        using var patches = patch_embed.call(images);                               // (B, N, D)
        using var cls = cls_token.expand(patches.size(0), 1, Spec.Dim);
        using var tokens = cat([cls, patches], 1);                                   // (B, 1 + N, D)
        using var positioned = tokens.add(pos_embed);
        return _posDrop.call(positioned);
    }

    public Tensor Block(int index, Tensor x, Tensor? attentionTemperature = null, BlockFeatures? capture = null, Tensor? qkvBiasDelta = null) =>
        blocks[index].Forward(x, attentionTemperature, capture, qkvBiasDelta);

    public Tensor FinalNorm(Tensor x) => norm.call(x);

    /// <summary>The plain ViT's pooled feature: CLS after the final norm (B, D).</summary>
    public Tensor forward_features(Tensor images) => this.Forward(images, NoHooks.Instance).Pooled;
}

/// <summary>Conv2d with kernel = stride = patch, flattened to tokens: (B, C, H, W) → (B, N, D).</summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    public nn.Conv2d proj { get; }

    public PatchEmbed(VitSpec spec) =>
        proj = RegisterModule("proj", new nn.Conv2d(spec.Channels, spec.Dim, spec.PatchSize, stride: spec.PatchSize));

    public override Tensor forward(Tensor images)
    {
        using var maps = proj.call(images);          // (B, D, g, g)
        using var flat = maps.flatten(2);            // (B, D, N)
        return flat.transpose(1, 2);                 // (B, N, D)
    }
}

/// <summary>Pre-norm block: x + Attn(LN1(x)), then + MLP(LN2(·)).</summary>
public sealed class Block : nn.Module
{
    public nn.LayerNorm norm1 { get; }
    public Attention attn { get; }
    public nn.LayerNorm norm2 { get; }
    public Mlp mlp { get; }

    public Block(VitSpec spec, double dropRate)
    {
        norm1 = RegisterModule("norm1", new nn.LayerNorm([spec.Dim], spec.LayerNormEps));
        attn = RegisterModule("attn", new Attention(spec));
        norm2 = RegisterModule("norm2", new nn.LayerNorm([spec.Dim], spec.LayerNormEps));
        mlp = RegisterModule("mlp", new Mlp(spec, dropRate));
    }

    public Tensor Forward(Tensor x, Tensor? temperature, BlockFeatures? capture, Tensor? qkvBiasDelta = null)
    {
        // Everything made inside the block is released when it returns (autograd keeps what backward needs), so a
        // forward pass holds one block's intermediates at a time, as eager PyTorch does; the result and the captured
        // features move to the caller's scope.
        using var scope = torch.NewDisposeScope();
        if (capture is not null) capture.Input = x.alias();
        using var n1 = norm1.call(x);
        using var a = attn.Forward(n1, temperature, capture, qkvBiasDelta);
        using var h = x.add(a);
        using var n2 = norm2.call(h);
        using var m = mlp.call(n2);
        if (capture is not null)
            foreach (var t in new[] { capture.Input, capture.Query, capture.AttentionOutput })
                t?.MoveToOuterDisposeScope();
        return h.add(m).MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head self-attention with one fused qkv projection (rows ordered q, k, v).</summary>
public sealed class Attention : nn.Module
{
    private readonly int _heads;
    private readonly int _dim;
    private readonly double _scale;
    public nn.Linear qkv { get; }
    public nn.Linear proj { get; }

    public Attention(VitSpec spec)
    {
        (_heads, _dim, _scale) = (spec.Heads, spec.Dim, 1.0 / Math.Sqrt(spec.HeadDim));
        qkv = RegisterModule("qkv", new nn.Linear(spec.Dim, 3 * spec.Dim));
        proj = RegisterModule("proj", new nn.Linear(spec.Dim, spec.Dim));
    }

    public Tensor Forward(Tensor x, Tensor? temperature, BlockFeatures? capture, Tensor? qkvBiasDelta = null)
    {
        long b = x.size(0), t = x.size(1);
        using var bias = qkvBiasDelta is null ? null : qkv.bias!.add(qkvBiasDelta);
        using var packed = bias is null ? qkv.call(x) : F.linear(x, qkv.weight, bias); // (B, T, 3D)
        if (capture is not null) capture.Query = packed.narrow(2, 0, _dim);        // W_Q·x + b_Q, heads concatenated
        using var view = packed.view(b, t, 3, _heads, _dim / _heads);
        using var split = view.permute(2, 0, 3, 1, 4);                             // (3, B, H, T, Dh)
        using var q = split.select(0, 0);
        using var k = split.select(0, 1);
        using var v = split.select(0, 2);
        using var kt = k.transpose(-2, -1);
        using var logits = q.matmul(kt);
        // softmax(q·kᵀ/√d_h / τ): GatedPT's per-block temperature divides the scaled logits.
        using var scaled = logits.mul(_scale);
        using var tempered = temperature is null ? null : scaled.div(temperature);
        using var weights = F.softmax(tempered ?? scaled, -1);
        using var heads = weights.matmul(v);                                       // (B, H, T, Dh)
        using var swapped = heads.transpose(1, 2);
        using var merged = swapped.reshape(b, t, _dim);                            // (B, T, D)
        if (capture is not null) capture.AttentionOutput = merged.alias();
        return proj.call(merged);
    }
}

/// <summary>fc1 → exact GELU → dropout → fc2 → dropout.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    public nn.Linear fc1 { get; }
    public nn.Linear fc2 { get; }
    private readonly nn.Dropout _drop;

    public Mlp(VitSpec spec, double dropRate)
    {
        fc1 = RegisterModule("fc1", new nn.Linear(spec.Dim, spec.MlpHidden));
        fc2 = RegisterModule("fc2", new nn.Linear(spec.MlpHidden, spec.Dim));
        _drop = RegisterModule("drop", new nn.Dropout(dropRate));
    }

    public override Tensor forward(Tensor x)
    {
        using var h = fc1.call(x);
        using var g = F.gelu(h);
        using var d = _drop.call(g);
        using var o = fc2.call(d);
        return _drop.call(o);
    }
}
