using Peft.Abstractions.Backbone;
using Peft.Engine.Formats;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Vision.Checkpoints;

/// <summary>
/// Google's Flax ViT checkpoints (<c>.npz</c>, e.g. VPT's <c>imagenet21k_ViT-B_16.npz</c>) mapped to timm's
/// keys with the transposes of timm's <c>_load_weights</c> and VPT's <c>load_from</c>
/// (docs/reference/anchors.md §2). <c>head/*</c> and <c>pre_logits/*</c> are ignored; scan-stacked
/// big_vision checkpoints (<c>Transformer/encoderblock/</c> with a layer axis) are not supported.
/// </summary>
internal static class GoogleNpz
{
    /// <summary>One timm tensor and the Google arrays (full names, expected shapes) it is made from.</summary>
    private sealed record Rule(string Target, (string Key, long[] Shape)[] Sources, Func<Tensor[], Tensor> Convert);

    /// <summary>Where the arrays live: the original release (maybe under <c>opt/target/</c>) or big_vision (<c>params/</c>).</summary>
    private sealed record Layout(string Prefix, bool BigVision)
    {
        public static Layout Detect(NpzArchive npz) =>
            npz.Contains("opt/target/embedding/kernel") ? new("opt/target/", false)
            : npz.Contains("params/embedding/kernel") ? new("params/", true)
            : npz.Contains("params/img/embedding/kernel") ? new("params/img/", true)
            : new("", false);

        // timm's (mha_sub, b_sub, ln1_sub): big_vision numbers the sub-modules of a block differently.
        public string Attention => BigVision ? "MultiHeadDotProductAttention_0" : "MultiHeadDotProductAttention_1";
        public string Mlp => BigVision ? "MlpBlock_0" : "MlpBlock_3";
        public string Norm2 => BigVision ? "LayerNorm_1" : "LayerNorm_2";
        public string PosEmbedding => BigVision ? "pos_embedding" : "Transformer/posembed_input/pos_embedding";
    }

    private static readonly string[] Ignored = ["head/", "pre_logits/"];

    /// <summary>
    /// Reads the file and returns the backbone's tensors under timm's keys, after checking every Google array
    /// strictly; the names of the arrays left out are added to <paramref name="ignored"/>.
    /// </summary>
    public static Dictionary<string, Tensor> Read(string path, VitSpec spec, string model, List<string> ignored, long maxBytes)
    {
        using var npz = Npz.Open(path, maxBytes);
        if (npz.Names.Count == 0)
            throw new InvalidDataException($"{path}: a zip without .npy arrays, not a NumPy .npz (nor a torch.save file, which holds a data.pkl)");
        var layout = Layout.Detect(npz);
        var rules = Rules(spec, layout).ToList();

        // Arrays outside the prefix (optimizer state beside opt/target/) and the classifier are not the backbone's.
        bool IsBackbone(string n) =>
            n.StartsWith(layout.Prefix, StringComparison.Ordinal) && !Ignored.Any(i => n.AsSpan(layout.Prefix.Length).StartsWith(i));
        ignored.AddRange(npz.Names.Where(n => !IsBackbone(n)));
        var arrays = npz.Names.Where(IsBackbone).ToDictionary(n => n, npz.Load);
        var posKey = layout.Prefix + layout.PosEmbedding;
        CheckpointMismatchException.ThrowIfMismatched(path, model,
            expected: rules.SelectMany(r => r.Sources).ToDictionary(s => s.Key, s => s.Shape),
            found: arrays.ToDictionary(a => a.Key, a => a.Value.shape),
            accepts: (key, shape) => key == posKey && PositionEmbedding.GridOf(shape, spec.Dim) is not null);
        return rules.ToDictionary(r => r.Target, r => r.Convert([.. r.Sources.Select(s => arrays[s.Key])]));
    }

    private static IEnumerable<Rule> Rules(VitSpec spec, Layout layout)
    {
        long d = spec.Dim, h = spec.Heads, dh = spec.HeadDim, p = spec.PatchSize, hidden = spec.MlpHidden;
        Rule Copy(string target, string key, params long[] shape) => new(target, [(layout.Prefix + key, shape)], a => a[0].alias());
        Rule Transposed(string target, string key, long rows, long cols) =>
            new(target, [(layout.Prefix + key, [rows, cols])], a => a[0].t());     // Dense kernel (in, out) → Linear (out, in)

        yield return new("patch_embed.proj.weight", [(layout.Prefix + "embedding/kernel", [p, p, spec.Channels, d])],
            a => a[0].permute(3, 2, 0, 1));                                          // HWIO → OIHW
        yield return Copy("patch_embed.proj.bias", "embedding/bias", d);
        yield return Copy("cls_token", "cls", 1, 1, d);
        yield return Copy("pos_embed", layout.PosEmbedding, 1, 1 + spec.NumPatches, d);
        for (var i = 0; i < spec.Depth; i++)
        {
            var (block, target) = ($"Transformer/encoderblock_{i}/", $"blocks.{i}.");
            var attn = layout.Prefix + block + layout.Attention + "/";
            yield return Copy(target + "norm1.weight", block + "LayerNorm_0/scale", d);
            yield return Copy(target + "norm1.bias", block + "LayerNorm_0/bias", d);
            // query/key/value kernels (D, H, Dh): flatten the heads to (D, D), transpose, stack q, k, v as rows of (3D, D).
            yield return new(target + "attn.qkv.weight", [.. QKV.Select(n => (attn + n + "/kernel", new[] { d, h, dh }))],
                a => cat([.. a.Select(k => k.reshape(d, d).t())], 0));
            yield return new(target + "attn.qkv.bias", [.. QKV.Select(n => (attn + n + "/bias", new[] { h, dh }))],
                a => cat([.. a.Select(b => b.reshape(d))], 0));
            // out kernel (H, Dh, D): the heads are its input axis, so (H·Dh, D) transposed.
            yield return new(target + "attn.proj.weight", [(attn + "out/kernel", [h, dh, d])], a => a[0].reshape(d, d).t());
            yield return new(target + "attn.proj.bias", [(attn + "out/bias", [d])], a => a[0].alias());
            yield return Copy(target + "norm2.weight", block + layout.Norm2 + "/scale", d);
            yield return Copy(target + "norm2.bias", block + layout.Norm2 + "/bias", d);
            var mlp = block + layout.Mlp + "/";
            yield return Transposed(target + "mlp.fc1.weight", mlp + "Dense_0/kernel", d, hidden);
            yield return Copy(target + "mlp.fc1.bias", mlp + "Dense_0/bias", hidden);
            yield return Transposed(target + "mlp.fc2.weight", mlp + "Dense_1/kernel", hidden, d);
            yield return Copy(target + "mlp.fc2.bias", mlp + "Dense_1/bias", d);
        }
        yield return Copy("norm.weight", "Transformer/encoder_norm/scale", d);
        yield return Copy("norm.bias", "Transformer/encoder_norm/bias", d);
    }

    private static readonly string[] QKV = ["query", "key", "value"];
}
