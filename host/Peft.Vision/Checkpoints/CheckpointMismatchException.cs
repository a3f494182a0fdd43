using System.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Vision.Checkpoints;

/// <summary>A checkpoint key with a shape: the model's expected shape for a missing key, the file's for an unexpected one.</summary>
public sealed record KeyShape(string Key, long[] Shape);

/// <summary>A key whose shape differs between the model and the checkpoint.</summary>
public sealed record SizeMismatch(string Key, long[] ExpectedShape, long[] FoundShape);

/// <summary>
/// A checkpoint that does not fit the model: every missing key, unexpected key and shape mismatch at once,
/// in the checkpoint's own key names (Google's for an .npz), with shapes, naming the file: what PyTorch's
/// load_state_dict reports (TorchSharp's does not compare shapes), plus the file and the shapes of missing and
/// unexpected keys.
/// </summary>
public sealed class CheckpointMismatchException : Exception
{
    public CheckpointMismatchException(string path, string model, IReadOnlyList<KeyShape> missing, IReadOnlyList<KeyShape> unexpected,
        IReadOnlyList<SizeMismatch> mismatches) : base(Describe(path, model, missing, unexpected, mismatches))
    {
        Path = path;
        MissingKeys = missing;
        UnexpectedKeys = unexpected;
        SizeMismatches = mismatches;
    }

    public string Path { get; }
    public IReadOnlyList<KeyShape> MissingKeys { get; }
    public IReadOnlyList<KeyShape> UnexpectedKeys { get; }
    public IReadOnlyList<SizeMismatch> SizeMismatches { get; }

    private static string Describe(string path, string model, IReadOnlyList<KeyShape> missing, IReadOnlyList<KeyShape> unexpected,
        IReadOnlyList<SizeMismatch> mismatches)
    {
        var sb = new StringBuilder($"checkpoint '{path}' does not fit {model}:");
        foreach (var m in missing) sb.Append($"\n\tmissing key \"{m.Key}\": the model expects {Shape(m.Shape)}");
        foreach (var u in unexpected) sb.Append($"\n\tunexpected key \"{u.Key}\" of shape {Shape(u.Shape)}");
        foreach (var s in mismatches)
            sb.Append($"\n\tsize mismatch for \"{s.Key}\": the checkpoint has {Shape(s.FoundShape)}, the model expects {Shape(s.ExpectedShape)}");
        return sb.ToString();
    }

    internal static string Shape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>
    /// Compares the keys and shapes found in a checkpoint with those expected, and throws one exception
    /// listing every difference. <paramref name="accepts"/> lets a differing shape through (a position
    /// embedding that will be resampled).
    /// </summary>
    internal static void ThrowIfMismatched(string path, string model, IReadOnlyDictionary<string, long[]> expected,
        IReadOnlyDictionary<string, long[]> found, Func<string, long[], bool>? accepts = null)
    {
        var missing = expected.Where(e => !found.ContainsKey(e.Key)).Select(e => new KeyShape(e.Key, e.Value)).ToList();
        var unexpected = found.Where(f => !expected.ContainsKey(f.Key)).Select(f => new KeyShape(f.Key, f.Value)).ToList();
        var mismatches = expected
            .Where(e => found.TryGetValue(e.Key, out var shape) && !shape.SequenceEqual(e.Value) && accepts?.Invoke(e.Key, shape) != true)
            .Select(e => new SizeMismatch(e.Key, e.Value, found[e.Key]))
            .ToList();
        if (missing.Count + unexpected.Count + mismatches.Count > 0)
            throw new CheckpointMismatchException(path, model, missing, unexpected, mismatches);
    }
}
