using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>
/// Loads a state dict into a module strictly, as PyTorch's load_state_dict(strict=True) does: every key and every
/// shape is checked before anything is copied, and all differences are reported at once. TorchSharp's own
/// load_state_dict neither names the keys nor compares shapes.
/// </summary>
public static class StrictState
{
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> state, string source)
    {
        var target = module.state_dict(); // the module's own tensors
        var missing = target.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !target.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var mismatched = target.Where(t => state.TryGetValue(t.Key, out var s) && !s.shape.SequenceEqual(t.Value.shape))
            .Select(t => $"size mismatch for {t.Key}: copying a param with shape [{string.Join(", ", state[t.Key].shape)}] from "
                + $"{source}, the shape in current model is [{string.Join(", ", t.Value.shape)}].")
            .ToList();
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
        {
            static string Quote(IEnumerable<string> keys) => string.Join(", ", keys.Select(k => $"\"{k}\""));
            var sb = new StringBuilder($"Error(s) in loading state_dict for {module.GetName()} from {source}:");
            if (missing.Count > 0) sb.Append("\n\tMissing key(s) in state_dict: ").Append(Quote(missing)).Append('.');
            if (unexpected.Count > 0) sb.Append("\n\tUnexpected key(s) in state_dict: ").Append(Quote(unexpected)).Append('.');
            foreach (var m in mismatched) sb.Append("\n\t").Append(m);
            throw new InvalidDataException(sb.ToString());
        }
        using var noGrad = no_grad();
        foreach (var (key, t) in target) t.copy_(state[key]);
    }
}
