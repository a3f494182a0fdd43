using Peft.Abstractions.Backbone;
using Peft.Engine.Formats;
using Peft.Vision.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using static Peft.Vision.Tests.TestSupport;

namespace Peft.Vision.Tests;

/// <summary>A small random ViT written in each supported layout and loaded back into a fresh ViT.</summary>
public class CheckpointFormatTests
{
    /// <summary>
    /// The ViT's weights laid out as Google's Flax ViT files are, written here by inverting the mapping of
    /// anchors.md §2 (not with the loader's code): Dense kernels (in, out), q/k/v kernels (D, H, Dh), the out
    /// kernel (H, Dh, D), the patch kernel HWIO, LayerNorm "scale"; plus the head and pre-logits the loader ignores.
    /// </summary>
    internal static Dictionary<string, Tensor> GoogleArrays(VisionTransformer vit, string prefix = "")
    {
        var s = vit.state_dict();
        long d = vit.Spec.Dim, h = vit.Spec.Heads, dh = vit.Spec.HeadDim;
        var g = new Dictionary<string, Tensor>
        {
            ["embedding/kernel"] = s["patch_embed.proj.weight"].permute(2, 3, 1, 0),   // OIHW → HWIO
            ["embedding/bias"] = s["patch_embed.proj.bias"],
            ["cls"] = s["cls_token"],
            ["Transformer/posembed_input/pos_embedding"] = s["pos_embed"],
            ["Transformer/encoder_norm/scale"] = s["norm.weight"],
            ["Transformer/encoder_norm/bias"] = s["norm.bias"],
            ["head/kernel"] = randn(d, 10),
            ["head/bias"] = randn(10),
            ["pre_logits/kernel"] = randn(d, d),
            ["pre_logits/bias"] = randn(d),
        };
        for (var i = 0; i < vit.Spec.Depth; i++)
        {
            var (b, t) = ($"Transformer/encoderblock_{i}/", $"blocks.{i}.");
            var attn = b + "MultiHeadDotProductAttention_1/";
            g[b + "LayerNorm_0/scale"] = s[t + "norm1.weight"];
            g[b + "LayerNorm_0/bias"] = s[t + "norm1.bias"];
            string[] names = ["query", "key", "value"];
            for (var j = 0; j < 3; j++)
            {
                // Rows j·D .. (j+1)·D of qkv are the Linear (out, in) weight of q, k or v; Flax stores (in, heads, head_dim).
                g[attn + names[j] + "/kernel"] = s[t + "attn.qkv.weight"].narrow(0, j * d, d).t().reshape(d, h, dh);
                g[attn + names[j] + "/bias"] = s[t + "attn.qkv.bias"].narrow(0, j * d, d).reshape(h, dh);
            }
            g[attn + "out/kernel"] = s[t + "attn.proj.weight"].t().reshape(h, dh, d);
            g[attn + "out/bias"] = s[t + "attn.proj.bias"];
            g[b + "LayerNorm_2/scale"] = s[t + "norm2.weight"];
            g[b + "LayerNorm_2/bias"] = s[t + "norm2.bias"];
            g[b + "MlpBlock_3/Dense_0/kernel"] = s[t + "mlp.fc1.weight"].t();
            g[b + "MlpBlock_3/Dense_0/bias"] = s[t + "mlp.fc1.bias"];
            g[b + "MlpBlock_3/Dense_1/kernel"] = s[t + "mlp.fc2.weight"].t();
            g[b + "MlpBlock_3/Dense_1/bias"] = s[t + "mlp.fc2.bias"];
        }
        return g.ToDictionary(kv => prefix + kv.Key, kv => kv.Value);
    }

    private static void AssertLoadsIdentically(VisionTransformer source, string path, BackboneKind kind)
    {
        using var scope = NewDisposeScope();
        using var fresh = new VisionTransformer(source.Spec);
        VitCheckpoints.Load(fresh, path, kind);
        AssertSameWeights(source, fresh);
        var images = Images();
        AssertBitwiseEqual(Features(source, images), Features(fresh, images));
        Assert.Equal(kind, fresh.Kind);
    }

    [Fact]
    public void Safetensors_round_trip_with_timm_keys_and_metadata()
    {
        using var dir = new TempDirectory();
        using var vit = RandomVit();
        var path = dir.File("vit.safetensors");
        VitCheckpoints.Save(vit, path);

        using (var reader = SafeTensors.Open(path))
        {
            Assert.Equal(vit.state_dict().Keys.Order(), reader.Names.Order());
            Assert.Equal([48L * 3, 48], reader.Info("blocks.1.attn.qkv.weight").Shape);
            Assert.Equal(vit.Identity, reader.Metadata["peft.identity"]);
            Assert.Equal("supervised", reader.Metadata["peft.kind"]);
        }
        Assert.Equal(vit.Spec, VitCheckpoints.ReadSpec(path));
        Assert.Equal(CheckpointFormat.SafeTensors, VitCheckpoints.DetectFormat(path));
        AssertLoadsIdentically(vit, path, BackboneKind.Supervised);
    }

    [Fact]
    public void Loading_replaces_the_cached_identity()
    {
        using var dir = new TempDirectory();
        using var source = RandomVit(seed: 1);
        using var target = RandomVit(seed: 2);
        var before = target.Identity;
        Assert.NotEqual(source.Identity, before);
        var path = dir.File("vit.safetensors");
        VitCheckpoints.Save(source, path);

        VitCheckpoints.Load(target, path, BackboneKind.Supervised);
        Assert.Equal(source.Identity, target.Identity);
    }

    [Fact]
    public void Google_arrays_written_here_follow_the_flax_layout()
    {
        // The test's own inverse mapping, checked element by element against the definitions.
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var g = GoogleArrays(vit);
        var s = vit.state_dict();
        const int D = 48, Dh = 16;
        var qkv = s["blocks.1.attn.qkv.weight"].data<float>().ToArray();          // (3D, D) row-major
        var key = g["Transformer/encoderblock_1/MultiHeadDotProductAttention_1/key/kernel"];
        Assert.Equal([48L, 3, 16], key.shape);
        var keyData = key.contiguous().data<float>().ToArray();
        // kernel[in = 5, head = 2, e = 7] is the weight from input 5 to key output 2·Dh + 7.
        Assert.Equal(qkv[(D + 2 * Dh + 7) * D + 5], keyData[(5 * 3 + 2) * Dh + 7]);
        var proj = s["blocks.0.attn.proj.weight"].data<float>().ToArray();        // (D out, D in)
        var outKernel = g["Transformer/encoderblock_0/MultiHeadDotProductAttention_1/out/kernel"].contiguous().data<float>().ToArray();
        // out kernel[head = 1, e = 3, out = 9] is the weight from attention feature 1·Dh + 3 to output 9.
        Assert.Equal(proj[9 * D + 1 * Dh + 3], outKernel[(1 * Dh + 3) * D + 9]);
        var conv = s["patch_embed.proj.weight"].data<float>().ToArray();           // (D, C, 8, 8)
        var hwio = g["embedding/kernel"].contiguous().data<float>().ToArray();     // (8, 8, C, D)
        Assert.Equal(conv[((4 * 3 + 2) * 8 + 6) * 8 + 1], hwio[((6 * 8 + 1) * 3 + 2) * D + 4]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("opt/target/")]
    public void Google_npz_loads_into_identical_weights(string prefix)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        using var vit = RandomVit();
        var path = dir.File("ViT-B_16.npz");
        var arrays = GoogleArrays(vit, prefix);
        if (prefix.Length > 0) arrays["opt/state/step"] = tensor(new[] { 1000L });   // optimizer state beside the weights
        Npz.Write(path, arrays);

        Assert.Equal(CheckpointFormat.GoogleNpz, VitCheckpoints.DetectFormat(path));
        using var fresh = new VisionTransformer(vit.Spec);
        var load = VitCheckpoints.Load(fresh, path, BackboneKind.Supervised);
        AssertSameWeights(vit, fresh);
        var images = Images();
        AssertBitwiseEqual(Features(vit, images), Features(fresh, images));
        string[] ignored = [.. new[] { "head/bias", "head/kernel", "pre_logits/bias", "pre_logits/kernel" }.Select(k => prefix + k)];
        Assert.Equal(prefix.Length > 0 ? ["opt/state/step", .. ignored] : ignored, load.Ignored.Order(StringComparer.Ordinal));
        Assert.Null(load.ResampledFromGrid);
    }

    /// <summary>MAE's pretrain key set: the encoder under timm's names, plus the decoder and mask token that must be dropped.</summary>
    private static Dictionary<string, Tensor> MaeCheckpoint(VisionTransformer vit, string prefix)
    {
        var state = vit.state_dict().ToDictionary(kv => prefix + kv.Key, kv => kv.Value);
        const int decoder = 32;
        state[prefix + "mask_token"] = randn(1, 1, decoder);
        state[prefix + "decoder_embed.weight"] = randn(decoder, 48);
        state[prefix + "decoder_embed.bias"] = randn(decoder);
        state[prefix + "decoder_pos_embed"] = randn(1, 17, decoder);
        state[prefix + "decoder_blocks.0.norm1.weight"] = randn(decoder);
        state[prefix + "decoder_blocks.0.attn.qkv.weight"] = randn(3 * decoder, decoder);
        state[prefix + "decoder_norm.weight"] = randn(decoder);
        state[prefix + "decoder_pred.weight"] = randn(8 * 8 * 3, decoder);
        return state;
    }

    [Theory]
    [InlineData("")]
    [InlineData("model.")]      // MAE's checkpoint['model'], flattened by the conversion
    public void Mae_safetensors_drop_the_decoder(string prefix)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        using var vit = RandomVit(kind: BackboneKind.Mae);
        var path = dir.File("mae_pretrain_vit_base.safetensors");
        SafeTensors.Save(path, MaeCheckpoint(vit, prefix));

        using var fresh = new VisionTransformer(vit.Spec);
        var load = VitCheckpoints.Load(fresh, path, BackboneKind.Mae);
        AssertSameWeights(vit, fresh);
        Assert.Equal(8, load.Ignored.Count);
        Assert.All(load.Ignored, k => Assert.Matches(@"^(model\.)?(mask_token|decoder_)", k));
        var images = Images();
        AssertBitwiseEqual(Features(vit, images), Features(fresh, images));
    }

    [Fact]
    public void Mae_keys_are_not_dropped_for_a_supervised_backbone()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        using var vit = RandomVit();
        var path = dir.File("mae.safetensors");
        SafeTensors.Save(path, MaeCheckpoint(vit, ""));

        using var fresh = new VisionTransformer(vit.Spec);
        var e = Assert.Throws<CheckpointMismatchException>(() => VitCheckpoints.Load(fresh, path, BackboneKind.Supervised));
        Assert.Equal(8, e.UnexpectedKeys.Count);
        Assert.Contains(e.UnexpectedKeys, u => u.Key == "mask_token" && u.Shape.SequenceEqual([1L, 1, 32]));
    }

    [Theory]
    [InlineData(true)]      // the pretrain file: module.base_encoder.*, module.momentum_encoder.*, module.predictor.*
    [InlineData(false)]     // the linear-probe file VPT uses: module.* with a Linear head
    public void Moco_safetensors_without_pos_embed_get_the_sin_cos_table(bool pretrain)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        using var vit = RandomVit(kind: BackboneKind.Moco);
        using (no_grad()) vit.pos_embed.copy_(PositionEmbedding.SinCos2d(vit.Spec.Grid, vit.Spec.Dim));
        vit.InvalidateIdentity();

        var prefix = pretrain ? "module.base_encoder." : "module.";
        var state = vit.state_dict().Where(kv => kv.Key != "pos_embed").ToDictionary(kv => prefix + kv.Key, kv => kv.Value);
        if (pretrain)
        {
            state["module.base_encoder.head.0.weight"] = randn(64, 48);     // the projection MLP
            state["module.momentum_encoder.blocks.0.norm1.weight"] = randn(48);
            state["module.momentum_encoder.pos_embed"] = randn(1, 17, 48);
            state["module.predictor.0.weight"] = randn(64, 64);
        }
        else
        {
            state["module.head.weight"] = randn(1000, 48);
            state["module.head.bias"] = randn(1000);
        }
        var path = dir.File("moco.safetensors");
        SafeTensors.Save(path, state);

        using var fresh = new VisionTransformer(vit.Spec);
        var load = VitCheckpoints.Load(fresh, path, BackboneKind.Moco);
        Assert.True(load.SinCosPositionEmbedding);
        Assert.Equal(pretrain ? 4 : 2, load.Ignored.Count);
        AssertSameWeights(vit, fresh);
        var images = Images();
        AssertBitwiseEqual(Features(vit, images), Features(fresh, images));
    }

    [Fact]
    public void Sin_cos_entries_follow_the_closed_form()
    {
        using var table = PositionEmbedding.SinCos2d(grid: 4, dim: 48);
        Assert.Equal([1L, 17, 48], table.shape);
        var v = table.data<float>().ToArray();
        float At(int token, int channel) => v[token * 48 + channel];
        const int quarter = 12;
        Assert.All(Enumerable.Range(0, 48), c => Assert.Equal(0f, At(0, c)));   // CLS entry zero

        // Token 1 + 7 is patch 7 of the row-major 4×4 grid: row 1, column 3. MoCo v3's first half encodes the row.
        foreach (var k in new[] { 0, 1, 5, 11 })
        {
            var omega = Math.Pow(10000, -k / 12.0);
            Assert.Equal(Math.Sin(1 * omega), At(8, k), 1e-6);
            Assert.Equal(Math.Cos(1 * omega), At(8, quarter + k), 1e-6);
            Assert.Equal(Math.Sin(3 * omega), At(8, 2 * quarter + k), 1e-6);
            Assert.Equal(Math.Cos(3 * omega), At(8, 3 * quarter + k), 1e-6);
        }
        Assert.Equal(Math.Sin(3.0), At(1 + 12, 0), 1e-6);       // patch 12: row 3, column 0
        Assert.Equal(1.0, At(1 + 12, 3 * quarter), 1e-6);       // cos(0·ω) for the column
        Assert.Equal(Math.Sin(2 * Math.Pow(10000, -1 / 12.0)), At(1 + 2, 2 * quarter + 1), 1e-6);  // patch 2: column 2
    }

    [Fact]
    public void Files_that_are_not_checkpoints_are_refused_with_the_path()
    {
        using var dir = new TempDirectory();
        using var vit = new VisionTransformer(Small);

        var text = dir.File("notes.pth");
        File.WriteAllText(text, "not a checkpoint");
        var e = Assert.Throws<InvalidDataException>(() => VitCheckpoints.Load(vit, text, BackboneKind.Supervised));
        Assert.StartsWith($"{text}: not a checkpoint read here", e.Message);

        // A zip holding a data.pkl is a torch.save file; this one's pickle stops after two bytes.
        var zipped = dir.File("model_zip.pth");
        using (var zip = new System.IO.Compression.ZipArchive(File.Create(zipped), System.IO.Compression.ZipArchiveMode.Create))
        using (var member = zip.CreateEntry("archive/data.pkl").Open()) member.Write([0x80, 0x02]);
        Assert.Equal(CheckpointFormat.PyTorch, VitCheckpoints.DetectFormat(zipped));
        var z = Assert.Throws<InvalidDataException>(() => VitCheckpoints.Load(vit, zipped, BackboneKind.Supervised));
        Assert.StartsWith($"{zipped}: ", z.Message);
        Assert.Contains("the pickle ends without STOP", z.Message);

        // A zip with neither .npy arrays nor a pickle.
        var other = dir.File("other.zip");
        using (var zip = new System.IO.Compression.ZipArchive(File.Create(other), System.IO.Compression.ZipArchiveMode.Create))
        using (var member = zip.CreateEntry("readme.txt").Open()) member.Write("hello"u8);
        Assert.StartsWith($"{other}: a zip without .npy arrays",
            Assert.Throws<InvalidDataException>(() => VitCheckpoints.Load(vit, other, BackboneKind.Supervised)).Message);
    }
}
