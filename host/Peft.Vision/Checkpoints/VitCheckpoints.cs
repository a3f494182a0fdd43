using System.IO.Compression;
using System.Text.Json;
using Peft.Abstractions.Backbone;
using Peft.Engine.Formats;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Vision.Checkpoints;

public enum CheckpointFormat
{
    /// <summary>safetensors with timm's keys (timm/HF exports, MAE and MoCo v3 checkpoints converted to safetensors).</summary>
    SafeTensors,

    /// <summary>Google's Flax ViT release as NumPy .npz (VPT's backbones).</summary>
    GoogleNpz,

    /// <summary>An official PyTorch checkpoint (torch.save zip: MAE .pth, MoCo v3 .pth.tar, timm pytorch_model.bin).</summary>
    PyTorch,
}

/// <summary>What a load did besides copying tensors, for the run's log.</summary>
/// <param name="Ignored">Checkpoint keys dropped as not the backbone's (classifier, MAE decoder, MoCo momentum encoder, ...).</param>
/// <param name="ResampledFromGrid">The checkpoint's position-embedding grid side, when it was resampled to the model's.</param>
/// <param name="SinCosPositionEmbedding">True when the position embedding was built as MoCo v3's fixed sin-cos table.</param>
public sealed record CheckpointLoad(string Path, CheckpointFormat Format, IReadOnlyList<string> Ignored, int? ResampledFromGrid,
    bool SinCosPositionEmbedding);

/// <summary>Loads pretrained weights into a <see cref="VisionTransformer"/> and saves them as timm-keyed safetensors.</summary>
public static class VitCheckpoints
{
    // Wrappers that training code puts around the backbone's keys: DDP, MoCo v3's base encoder,
    // torch.compile, and a "model" container flattened by the conversion to safetensors.
    private static readonly string[] WrapperPrefixes = ["module.", "base_encoder.", "_orig_mod.", "model."];

    private const string SpecKey = "peft.spec", KindKey = "peft.kind", IdentityKey = "peft.identity";

    /// <summary>
    /// Loads a checkpoint, chosen by content (a zip of .npy arrays is an .npz, a zip with data.pkl a torch.save file, an
    /// 8-byte length and JSON are safetensors), into
    /// <paramref name="vit"/>: keys are converted to timm's, keys that are not the backbone's are dropped, the
    /// position embedding is resampled when its grid differs (or built for MoCo v3 when absent), then every
    /// key and shape is checked strictly before anything is copied.
    /// </summary>
    /// <param name="maxBytes">Largest total of tensors the file may declare (Backbone:MaxCheckpointBytes), checked before any is read.</param>
    /// <exception cref="CheckpointMismatchException">Missing, unexpected or misshapen keys, all listed at once.</exception>
    /// <exception cref="InvalidDataException">The file is not a checkpoint format read here, or is corrupt, or its pickle is unsafe, or too large.</exception>
    public static CheckpointLoad Load(VisionTransformer vit, string path, BackboneKind kind, long maxBytes = TensorFiles.DefaultMaxBytes)
    {
        using var scope = NewDisposeScope();
        var spec = vit.Spec;
        var model = $"{nameof(VisionTransformer)} ({spec}) as a {Name(kind)} backbone";
        var format = DetectFormat(path);
        List<string> ignored = [];
        var target = vit.state_dict(); // the module's own tensors: not disposed here
        var expected = target.ToDictionary(t => t.Key, t => t.Value.shape);
        var state = format switch
        {
            CheckpointFormat.GoogleNpz => GoogleNpz.Read(path, spec, model, ignored, maxBytes),
            CheckpointFormat.PyTorch => BackboneKeys(path, PyTorchCheckpoint.Read(path, maxBytes), kind, ignored),
            _ => ReadSafeTensors(path, kind, ignored, maxBytes, found => CheckShapes(path, model, spec, kind, expected, found)),
        };

        var sinCos = kind == BackboneKind.Moco && !state.ContainsKey("pos_embed");
        if (sinCos) state["pos_embed"] = PositionEmbedding.SinCos2d(spec.Grid, spec.Dim);
        CheckShapes(path, model, spec, kind, expected, state.ToDictionary(s => s.Key, s => s.Value.shape));

        var grid = PositionEmbedding.GridOf(state["pos_embed"].shape, spec.Dim);
        if (grid != spec.Grid) state["pos_embed"] = PositionEmbedding.Resample(state["pos_embed"], spec.Grid);

        vit.load_state_dict(state);
        vit.Kind = kind;
        vit.InvalidateIdentity();
        return new CheckpointLoad(path, format, ignored, grid != spec.Grid ? grid : null, sinCos);
    }

    /// <summary>Writes the ViT's weights as safetensors with timm's keys; the metadata records spec, kind and identity.</summary>
    public static void Save(VisionTransformer vit, string path)
    {
        SafeTensors.Save(path, vit.state_dict(), new Dictionary<string, string>
        {
            ["format"] = "pt",                                 // what timm and transformers write
            [SpecKey] = JsonSerializer.Serialize(vit.Spec),
            [KindKey] = Name(vit.Kind),
            [IdentityKey] = vit.Identity,
        });
    }

    /// <summary>The spec <see cref="Save"/> recorded in a safetensors file, or null when the file has none.</summary>
    public static VitSpec? ReadSpec(string path)
    {
        using var reader = SafeTensors.Open(path);
        return reader.Metadata.TryGetValue(SpecKey, out var json) ? JsonSerializer.Deserialize<VitSpec>(json) : null;
    }

    /// <summary>The format of a checkpoint file, from its first bytes (and, for a zip, what it holds).</summary>
    public static CheckpointFormat DetectFormat(string path)
    {
        Span<byte> head = stackalloc byte[9];
        int read;
        using (var stream = File.OpenRead(path)) read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (read >= 4 && head[..4].SequenceEqual("PK\x03\x04"u8))
        {
            using var zip = ZipFile.OpenRead(path);
            return PyTorchCheckpoint.IsTorchZip(zip) ? CheckpointFormat.PyTorch : CheckpointFormat.GoogleNpz;
        }
        if (read == head.Length && head[8] == (byte)'{') return CheckpointFormat.SafeTensors;
        if (read > 0 && head[0] == 0x80) return CheckpointFormat.PyTorch; // a legacy torch.save pickle: its reader says how to re-save it
        throw new InvalidDataException($"{path}: not a checkpoint read here (safetensors, Google .npz, or a torch.save .pth/.bin file)");
    }

    /// <summary>
    /// Every key and shape against the model's, all differences at once. A position embedding of another square grid is
    /// resampled, up to four times the model's side (a checkpoint of a larger input); MoCo v3's may be absent (sin-cos).
    /// </summary>
    private static void CheckShapes(string path, string model, VitSpec spec, BackboneKind kind, IReadOnlyDictionary<string, long[]> expected,
        IReadOnlyDictionary<string, long[]> found)
    {
        if (kind == BackboneKind.Moco && !found.ContainsKey("pos_embed"))
            found = new Dictionary<string, long[]>(found) { ["pos_embed"] = expected["pos_embed"] };
        CheckpointMismatchException.ThrowIfMismatched(path, model, expected, found,
            accepts: (key, shape) => key == "pos_embed" && PositionEmbedding.GridOf(shape, spec.Dim) is { } grid && grid <= 4 * spec.Grid);
    }

    /// <summary>
    /// A safetensors file's tensors under timm's keys: wrapper prefixes stripped, keys that are not the backbone's dropped.
    /// Names and shapes come from the header and are checked (<paramref name="check"/>) before any tensor is read, so a
    /// file of the wrong model costs no memory.
    /// </summary>
    private static Dictionary<string, Tensor> ReadSafeTensors(string path, BackboneKind kind, List<string> ignored, long maxBytes,
        Action<IReadOnlyDictionary<string, long[]>> check)
    {
        using var reader = SafeTensors.Open(path, maxBytes);
        var names = BackboneNames(path, reader.Names, kind, ignored);
        check(names.ToDictionary(n => n.Key, n => reader.Info(n.Value).Shape));
        return names.ToDictionary(n => n.Key, n => reader.Load(n.Value));
    }

    /// <summary>
    /// A checkpoint's tensors under timm's keys: wrapper prefixes stripped, keys that are not the backbone's dropped
    /// (and disposed) and listed in <paramref name="ignored"/>.
    /// </summary>
    private static Dictionary<string, Tensor> BackboneKeys(string path, Dictionary<string, Tensor> tensors, BackboneKind kind, List<string> ignored)
    {
        var names = BackboneNames(path, tensors.Keys, kind, ignored);
        var kept = names.Values.ToHashSet(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
            if (!kept.Contains(name)) tensor.Dispose();
        return names.ToDictionary(n => n.Key, n => tensors[n.Value]);
    }

    /// <summary>timm key → the checkpoint's name for it, for the backbone's keys; the other names go to <paramref name="ignored"/>.</summary>
    private static Dictionary<string, string> BackboneNames(string path, IEnumerable<string> names, BackboneKind kind, List<string> ignored)
    {
        var origin = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            var key = StripWrappers(name);
            if (!IsBackbone(key, kind))
            {
                ignored.Add(name);
                continue;
            }
            if (!origin.TryAdd(key, name))
                throw new InvalidDataException($"{path}: '{origin[key]}' and '{name}' both name the backbone's '{key}'");
        }
        return origin;
    }

    private static string StripWrappers(string key)
    {
        for (var stripped = true; stripped;)
        {
            stripped = false;
            foreach (var prefix in WrapperPrefixes)
                if (key.StartsWith(prefix, StringComparison.Ordinal))
                {
                    key = key[prefix.Length..];
                    stripped = true;
                }
        }
        return key;
    }

    /// <summary>
    /// False for what pre-training or classification adds around the backbone: the classifier (<c>head</c>,
    /// <c>pre_logits</c>); MAE's decoder, mask token and <c>fc_norm</c>; MoCo v3's momentum encoder and predictor
    /// (VPT's MoCo loader drops them too, docs/reference/vpt_gated.md).
    /// </summary>
    private static bool IsBackbone(string key, BackboneKind kind)
    {
        static bool Under(string key, string module) =>
            key.StartsWith(module, StringComparison.Ordinal) && (key.Length == module.Length || key[module.Length] == '.');

        if (Under(key, "head") || Under(key, "pre_logits")) return false;
        return kind switch
        {
            BackboneKind.Mae => !(Under(key, "fc_norm") || Under(key, "mask_token") || key.StartsWith("decoder_", StringComparison.Ordinal)),
            BackboneKind.Moco => !(Under(key, "momentum_encoder") || Under(key, "predictor")),
            _ => true,
        };
    }

    private static string Name(BackboneKind kind) => kind.ToString().ToLowerInvariant();
}
