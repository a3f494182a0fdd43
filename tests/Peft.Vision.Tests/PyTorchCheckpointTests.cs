using Peft.Abstractions.Backbone;
using Peft.Engine.Formats;
using Peft.Vision.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using static Peft.Vision.Tests.TestSupport;

namespace Peft.Vision.Tests;

/// <summary>
/// Official PyTorch checkpoints, written by torch.save from real modules in MAE's, MoCo v3's and timm's layouts
/// (tests/reference/pth_fixtures.py), holding the reference ViT's first block: what is loaded must be the reference
/// arrays of vit_reference.npz bit for bit, and what the layout adds around the backbone must be reported as ignored.
/// </summary>
public class PyTorchCheckpointTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    /// <summary>The command the unsafe fixture's pickle runs: <c>touch</c> of this file (pth_fixtures.py's MARKER).</summary>
    private const string Marker = "/tmp/peft-unsafe-checkpoint-ran";

    /// <summary>The reference ViT's spec (vit_reference.npz) cut to the first block, as the fixtures are.</summary>
    private static VitSpec FixtureSpec()
    {
        using var npz = Npz.Open(ReferenceParityTests.FixturePath);
        using var spec = npz.Load("spec");
        var s = spec.data<double>().ToArray();
        return new VitSpec((int)s[0], (int)s[1], (int)s[2], (int)s[3], Depth: 1, (int)s[5], s[6]);
    }

    /// <summary>A ViT of the fixtures' spec with random weights, so a load that copies nothing cannot pass.</summary>
    private static VisionTransformer Target() => RandomVit(FixtureSpec(), seed: 17);

    /// <summary>Every tensor of the ViT equals the reference array of the same key, bit for bit.</summary>
    private static void AssertReferenceWeights(VisionTransformer vit)
    {
        using var scope = NewDisposeScope();
        var reference = Npz.LoadAll(ReferenceParityTests.FixturePath);
        var state = vit.state_dict();
        Assert.Equal(18, state.Count);                                  // 4 + 12 for one block + 2 for the final norm
        foreach (var (key, tensor) in state)
        {
            Assert.True(reference.ContainsKey(key), $"no reference array for {key}");
            Assert.True(reference[key].shape.SequenceEqual(tensor.shape), $"{key}: [{string.Join(", ", tensor.shape)}]");
            Assert.True(Bytes(reference[key]).AsSpan().SequenceEqual(Bytes(tensor)), $"{key} is not the reference array");
        }
    }

    private static readonly string[] EncoderKeys =
    [
        "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
        .. new[] { "norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2" }
            .SelectMany(m => new[] { $"blocks.0.{m}.weight", $"blocks.0.{m}.bias" }),
        "norm.weight", "norm.bias",
    ];

    private static IEnumerable<string> BatchNorm(string prefix, bool affine = true) =>
        (affine ? new[] { "weight", "bias" } : []).Concat(["running_mean", "running_var", "num_batches_tracked"]).Select(k => prefix + k);

    /// <summary>MoCo v3's 3-layer projector (Linear, BN, ReLU, Linear, BN, ReLU, Linear, BN without affine), as a head.</summary>
    private static IEnumerable<string> Projector(string prefix) =>
        [prefix + "head.0.weight", .. BatchNorm(prefix + "head.1."), prefix + "head.3.weight", .. BatchNorm(prefix + "head.4."),
         prefix + "head.6.weight", .. BatchNorm(prefix + "head.7.", affine: false)];

    [Fact]
    public void Mae_pretrain_pth_loads_the_encoder_and_ignores_the_decoder_and_mask_token()
    {
        using var vit = Target();
        var path = Fixture("mae_pretrain_reference.pth");
        Assert.Equal(CheckpointFormat.PyTorch, VitCheckpoints.DetectFormat(path));

        var load = VitCheckpoints.Load(vit, path, BackboneKind.Mae);

        Assert.Equal(CheckpointFormat.PyTorch, load.Format);
        Assert.Equal(BackboneKind.Mae, vit.Kind);
        AssertReferenceWeights(vit);
        string[] decoder =
        [
            "mask_token", "decoder_pos_embed", "decoder_embed.weight", "decoder_embed.bias",
            .. new[] { "norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2" }
                .SelectMany(m => new[] { $"decoder_blocks.0.{m}.weight", $"decoder_blocks.0.{m}.bias" }),
            "decoder_norm.weight", "decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias",
        ];
        Assert.Equal(decoder.Order(StringComparer.Ordinal), load.Ignored.Order(StringComparer.Ordinal));
        Assert.Null(load.ResampledFromGrid);
        Assert.False(load.SinCosPositionEmbedding);
    }

    [Fact]
    public void Mae_decoder_keys_are_unexpected_for_a_supervised_backbone()
    {
        using var vit = Target();
        var identity = vit.Identity;
        var e = Assert.Throws<CheckpointMismatchException>(() => VitCheckpoints.Load(vit, Fixture("mae_pretrain_reference.pth"), BackboneKind.Supervised));
        Assert.Equal(20, e.UnexpectedKeys.Count);
        Assert.Contains(e.UnexpectedKeys, u => u.Key == "mask_token" && u.Shape.SequenceEqual([1L, 1, 16]));
        Assert.Contains(e.UnexpectedKeys, u => u.Key == "decoder_pred.weight" && u.Shape.SequenceEqual([8L * 8 * 3, 16]));
        Assert.Empty(e.MissingKeys);
        vit.InvalidateIdentity();
        Assert.Equal(identity, vit.Identity);                        // nothing was copied
    }

    [Fact]
    public void Moco_v3_pth_tar_loads_the_base_encoder_and_ignores_momentum_encoder_projector_predictor_and_optimizer()
    {
        using var vit = Target();
        var path = Fixture("moco_v3_reference.pth.tar");
        Assert.Equal(CheckpointFormat.PyTorch, VitCheckpoints.DetectFormat(path));

        var load = VitCheckpoints.Load(vit, path, BackboneKind.Moco);

        AssertReferenceWeights(vit);
        Assert.Equal(BackboneKind.Moco, vit.Kind);
        Assert.False(load.SinCosPositionEmbedding);                  // the training checkpoint stores its pos_embed
        string[] ignored =
        [
            .. Projector("module.base_encoder."),
            .. EncoderKeys.Select(k => "module.momentum_encoder." + k), .. Projector("module.momentum_encoder."),
            "module.predictor.0.weight", .. BatchNorm("module.predictor.1."), "module.predictor.3.weight",
        ];
        Assert.Equal(57, ignored.Length);
        Assert.Equal(ignored.Order(StringComparer.Ordinal), load.Ignored.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Timm_pytorch_model_bin_loads_and_ignores_the_head()
    {
        using var vit = Target();
        var path = Fixture(Path.Combine("timm_reference", "pytorch_model.bin"));
        Assert.Equal(CheckpointFormat.PyTorch, VitCheckpoints.DetectFormat(path));

        var load = VitCheckpoints.Load(vit, path, BackboneKind.Supervised);

        AssertReferenceWeights(vit);
        Assert.Equal(["head.bias", "head.weight"], load.Ignored.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_pickle_that_calls_os_system_is_refused_by_name_and_nothing_runs()
    {
        File.Delete(Marker);                                          // left by a run of the fixture script, if any
        using var vit = Target();
        var identity = vit.Identity;
        var path = Fixture("unsafe_os_system.pth");
        Assert.Equal(CheckpointFormat.PyTorch, VitCheckpoints.DetectFormat(path));

        var e = Assert.Throws<UnsafeCheckpointException>(() => VitCheckpoints.Load(vit, path, BackboneKind.Supervised));

        Assert.Equal(["posix.system"], e.Globals);
        Assert.StartsWith($"{path}: refused: its pickle names posix.system", e.Message);
        Assert.Contains("Nothing in it was executed", e.Message);
        Assert.False(File.Exists(Marker), $"{Marker} exists: the pickle's command ran");
        vit.InvalidateIdentity();
        Assert.Equal(identity, vit.Identity);
    }

    [Fact]
    public void A_whole_pickled_module_is_refused_naming_its_classes()
    {
        using var vit = Target();
        var path = Fixture("whole_module.pth");                      // torch.save(nn.Linear(2, 2))

        var e = Assert.Throws<UnsafeCheckpointException>(() => VitCheckpoints.Load(vit, path, BackboneKind.Supervised));

        Assert.Equal(["__builtin__.set", "torch.nn.modules.linear.Linear"], e.Globals.Order(StringComparer.Ordinal));
        Assert.Contains("torch.save(model.state_dict(), path)", e.Message);
    }

    [Fact]
    public void A_legacy_torch_save_file_is_refused_saying_how_to_re_save_it()
    {
        using var vit = Target();
        var path = Fixture("legacy_format.pth");                     // _use_new_zipfile_serialization=False
        Assert.Equal(CheckpointFormat.PyTorch, VitCheckpoints.DetectFormat(path));

        var e = Assert.Throws<InvalidDataException>(() => VitCheckpoints.Load(vit, path, BackboneKind.Supervised));

        Assert.StartsWith($"{path}: a legacy (pre-1.6, non-zip) torch.save file", e.Message);
        Assert.Contains("torch.save(torch.load(path, weights_only=True), path)", e.Message);
    }
}
