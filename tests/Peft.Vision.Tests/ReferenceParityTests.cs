using Peft.Abstractions.Backbone;
using Peft.Engine.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Vision.Tests;

/// <summary>
/// The ViT's forward pass against an independent PyTorch implementation written from the spec
/// (tests/reference/vit_reference.py), on the same weights and inputs.
/// </summary>
public class ReferenceParityTests
{
    internal static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "vit_reference.npz");

    /// <summary>The reference ViT with its weights loaded, plus the fixture's remaining arrays.</summary>
    internal static (VisionTransformer Vit, Dictionary<string, Tensor> Arrays) LoadReference()
    {
        var arrays = Npz.LoadAll(FixturePath);
        var s = arrays["spec"].data<double>().ToArray();
        var vit = new VisionTransformer(new VitSpec((int)s[0], (int)s[1], (int)s[2], (int)s[3], (int)s[4], (int)s[5], s[6]));
        var weights = arrays.Where(kv => vit.state_dict().ContainsKey(kv.Key)).ToDictionary();
        vit.load_state_dict(weights);
        vit.eval();
        return (vit, arrays);
    }

    [Fact]
    public void Forward_matches_the_pytorch_reference_to_1e_5()
    {
        var (vit, arrays) = LoadReference();
        using var _ = no_grad();
        using var pooled = vit.forward_features(arrays["input"]);
        var expected = arrays["expected_pooled"].data<float>().ToArray();
        var actual = pooled.data<float>().ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5, $"pooled[{i}]: expected {expected[i]}, found {actual[i]}");

        using var logits = nn.functional.linear(pooled, arrays["head.weight"], arrays["head.bias"]);
        var expectedLogits = arrays["expected_logits"].data<float>().ToArray();
        var actualLogits = logits.data<float>().ToArray();
        for (var i = 0; i < expectedLogits.Length; i++)
            Assert.True(Math.Abs(expectedLogits[i] - actualLogits[i]) <= 1e-5, $"logits[{i}]: expected {expectedLogits[i]}, found {actualLogits[i]}");
    }

    [Fact]
    public void Parameter_names_and_shapes_are_timms()
    {
        using var vit = new VisionTransformer(VitSpec.Preset("vit-b16"));
        var shapes = vit.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal([1, 1, 768], shapes["cls_token"]);
        Assert.Equal([1, 197, 768], shapes["pos_embed"]);
        Assert.Equal([768, 3, 16, 16], shapes["patch_embed.proj.weight"]);
        Assert.Equal([2304, 768], shapes["blocks.11.attn.qkv.weight"]);
        Assert.Equal([768, 768], shapes["blocks.0.attn.proj.weight"]);
        Assert.Equal([3072, 768], shapes["blocks.5.mlp.fc1.weight"]);
        Assert.Equal([768, 3072], shapes["blocks.5.mlp.fc2.weight"]);
        Assert.Equal([768], shapes["norm.bias"]);
        Assert.Equal(4 + 12 * 12 + 2, shapes.Count);
        // ViT-B/16 without its head: 85,798,656 parameters (timm's vit_base_patch16_224, num_classes=0).
        Assert.Equal(85_798_656L, vit.parameters().Sum(p => p.numel()));
    }
}

/// <summary>timm's initialisation, checked by its statistics (TorchSharp 0.107's own trunc_normal_ fills a constant).</summary>
public class InitialisationTests
{
    [Fact]
    public void Vit_weights_and_position_embedding_are_truncated_normal_with_std_0_02()
    {
        TorchSharp.torch.manual_seed(3);
        using var vit = new VisionTransformer(VitSpec.Preset("vit-s16"));
        foreach (var (name, p) in vit.named_parameters().Where(p => p.name == "pos_embed" || (p.name.StartsWith("blocks.", StringComparison.Ordinal) && p.parameter.dim() == 2)))
        {
            var std = p.std().ToDouble();
            Assert.True(Math.Abs(std - 0.02) < 0.0005, $"{name}: std {std:G4}, expected 0.02");
            Assert.True(Math.Abs(p.mean().ToDouble()) < 0.0005, $"{name}: mean {p.mean().ToDouble():G4}");
        }
    }

    [Fact]
    public void Truncated_normal_matches_the_closed_form_of_a_truncated_distribution()
    {
        // N(0, 1) truncated to [a, b] = [-1, 2], Z = Φ(b) - Φ(a) = 0.81859: mean (φ(a) - φ(b)) / Z = 0.22964,
        // variance 1 + (aφ(a) - bφ(b)) / Z - mean² = 0.51976 (std 0.72095).
        TorchSharp.torch.manual_seed(5);
        using var t = TorchSharp.torch.empty(400_000);
        Abstractions.TensorInit.trunc_normal_(t, mean: 0, std: 1, a: -1, b: 2);
        Assert.Equal(-1.0, t.min().ToDouble(), 2);
        Assert.Equal(2.0, t.max().ToDouble(), 2);
        Assert.Equal(0.22964, t.mean().ToDouble(), 2);
        Assert.Equal(0.72095, t.std().ToDouble(), 2);
    }
}
