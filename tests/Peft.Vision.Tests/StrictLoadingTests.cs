using Peft.Abstractions.Backbone;
using Peft.Engine.Formats;
using Peft.Vision.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using static Peft.Vision.Tests.TestSupport;

namespace Peft.Vision.Tests;

/// <summary>A checkpoint that does not fit is one error naming every offending key with shapes and the file; nothing is copied.</summary>
public class StrictLoadingTests
{
    /// <summary>
    /// Saves a random ViT's state dict, edited, as safetensors and loads it into another ViT, which must fail
    /// with <typeparamref name="TException"/> and keep its weights.
    /// </summary>
    private static TException FailsToLoad<TException>(TempDirectory dir, Action<Dictionary<string, Tensor>> edit, out string path)
        where TException : Exception
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var state = vit.state_dict().ToDictionary();
        edit(state);
        path = dir.File("edited.safetensors");
        SafeTensors.Save(path, state);

        using var target = RandomVit(seed: 99);
        var identity = target.Identity;
        var file = path;
        var e = Assert.Throws<TException>(() => VitCheckpoints.Load(target, file, BackboneKind.Supervised));
        target.InvalidateIdentity();
        Assert.Equal(identity, target.Identity);          // nothing was copied
        return e;
    }

    [Fact]
    public void Safetensors_with_a_missing_an_unexpected_and_a_misshapen_key_fail_once_naming_all_three()
    {
        using var dir = new TempDirectory();
        var e = FailsToLoad<CheckpointMismatchException>(dir, state =>
        {
            state.Remove("blocks.0.norm1.bias");
            state["blocks.0.extra.weight"] = zeros(3, 4);
            state["blocks.1.mlp.fc1.weight"] = zeros(10, 48);
        }, out var path);

        Assert.Equal(path, e.Path);
        Assert.Equal([("blocks.0.norm1.bias", "[48]")], e.MissingKeys.Select(k => (k.Key, CheckpointShape(k.Shape))));
        Assert.Equal([("blocks.0.extra.weight", "[3, 4]")], e.UnexpectedKeys.Select(k => (k.Key, CheckpointShape(k.Shape))));
        var mismatch = Assert.Single(e.SizeMismatches);
        Assert.Equal(("blocks.1.mlp.fc1.weight", "[192, 48]", "[10, 48]"),
            (mismatch.Key, CheckpointShape(mismatch.ExpectedShape), CheckpointShape(mismatch.FoundShape)));
        Assert.StartsWith($"checkpoint '{path}' does not fit VisionTransformer", e.Message);
        Assert.Contains("missing key \"blocks.0.norm1.bias\": the model expects [48]", e.Message);
        Assert.Contains("unexpected key \"blocks.0.extra.weight\" of shape [3, 4]", e.Message);
        Assert.Contains("size mismatch for \"blocks.1.mlp.fc1.weight\": the checkpoint has [10, 48], the model expects [192, 48]", e.Message);
    }

    [Fact]
    public void Google_npz_errors_use_googles_key_names_and_shapes()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        using var vit = RandomVit();
        var arrays = CheckpointFormatTests.GoogleArrays(vit);
        const string query = "Transformer/encoderblock_1/MultiHeadDotProductAttention_1/query/kernel";
        arrays.Remove(query);
        arrays["Transformer/encoderblock_0/Extra_9/kernel"] = zeros(2, 5);
        arrays["Transformer/encoder_norm/scale"] = zeros(47);
        var path = dir.File("broken.npz");
        Npz.Write(path, arrays);

        using var target = new VisionTransformer(vit.Spec);
        var e = Assert.Throws<CheckpointMismatchException>(() => VitCheckpoints.Load(target, path, BackboneKind.Supervised));
        Assert.Equal([(query, "[48, 3, 16]")], e.MissingKeys.Select(k => (k.Key, CheckpointShape(k.Shape))));
        Assert.Equal([("Transformer/encoderblock_0/Extra_9/kernel", "[2, 5]")], e.UnexpectedKeys.Select(k => (k.Key, CheckpointShape(k.Shape))));
        var mismatch = Assert.Single(e.SizeMismatches);
        Assert.Equal(("Transformer/encoder_norm/scale", "[48]", "[47]"),
            (mismatch.Key, CheckpointShape(mismatch.ExpectedShape), CheckpointShape(mismatch.FoundShape)));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_position_embedding_that_is_not_a_square_grid_is_a_size_mismatch()
    {
        using var dir = new TempDirectory();
        var e = FailsToLoad<CheckpointMismatchException>(dir, state => state["pos_embed"] = zeros(1, 16, 48), out _);  // 15 cells after CLS
        Assert.Equal("pos_embed", Assert.Single(e.SizeMismatches).Key);
        Assert.Empty(e.MissingKeys);
        Assert.Empty(e.UnexpectedKeys);
    }

    [Fact]
    public void A_supervised_checkpoint_without_pos_embed_is_missing_it()
    {
        // Only MoCo v3 gets the fixed sin-cos table; elsewhere an absent position embedding is an error.
        using var dir = new TempDirectory();
        var e = FailsToLoad<CheckpointMismatchException>(dir, state => state.Remove("pos_embed"), out _);
        Assert.Equal("pos_embed", Assert.Single(e.MissingKeys).Key);
    }

    [Fact]
    public void Two_keys_naming_the_same_backbone_tensor_are_refused()
    {
        using var dir = new TempDirectory();
        var e = FailsToLoad<InvalidDataException>(dir, state => state["module.norm.bias"] = state["norm.bias"], out _);
        Assert.Contains("both name the backbone's 'norm.bias'", e.Message);
    }

    private static string CheckpointShape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
