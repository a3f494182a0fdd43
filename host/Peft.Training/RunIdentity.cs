using System.Text.Json;
using Peft.Configuration;

namespace Peft.Training;

/// <summary>
/// What decides a run's result, as configuration keys and canonical values: every bound option of the records that
/// configure it, the identity of the pretrained weights and of the dataset, the build of the method's plugin. A run
/// directory records its run's identity (identity.json); a run with another identity is never resumed there, and
/// never reported from there.
/// </summary>
public sealed class RunIdentity
{
    private readonly SortedDictionary<string, string> _values = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, string> Values => _values;

    /// <summary>The first 16 hex digits of the SHA-256 of the canonical text (stored in checkpoints).</summary>
    public string Hash => ContentHashing.HashText(Text);

    /// <summary>One "key=value" line per key, in key order.</summary>
    public string Text => string.Join("\n", _values.Select(kv => $"{kv.Key}={kv.Value}"));

    /// <summary>Adds (or replaces) one key.</summary>
    public RunIdentity With(string key, string value)
    {
        _values[key] = value;
        return this;
    }

    /// <summary>Adds every option of <paramref name="record"/> under <paramref name="path"/> (nested records as Path:Key:Inner), except <paramref name="except"/>.</summary>
    public RunIdentity With(string path, IHyperParameters record, params string[] except)
    {
        using var json = JsonDocument.Parse(ContentHashing.CanonicalText(record));
        Flatten(path, json.RootElement, except);
        return this;
    }

    /// <summary>Adds every key of <paramref name="other"/>.</summary>
    public RunIdentity With(RunIdentity? other)
    {
        foreach (var (key, value) in other?._values ?? []) _values[key] = value;
        return this;
    }

    private void Flatten(string path, JsonElement element, string[] except)
    {
        if (element.ValueKind == JsonValueKind.Object)
            foreach (var property in element.EnumerateObject())
            {
                var key = ConfigPath.Combine(path, property.Name);
                if (!except.Contains(property.Name, StringComparer.Ordinal)) Flatten(key, property.Value, except);
            }
        else
            _values[path] = element.GetRawText();
    }

    /// <summary>Keys whose values differ, or that only one side has, each as "Key: 'recorded' here, 'current' now".</summary>
    public IReadOnlyList<(string Key, string Message)> Differences(RunIdentity recorded)
    {
        var keys = _values.Keys.Union(recorded._values.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal);
        return [.. keys
            .Where(k => recorded._values.GetValueOrDefault(k) != _values.GetValueOrDefault(k))
            .Select(k => (k, $"{k}: {Show(recorded._values.GetValueOrDefault(k))} in the run directory, {Show(_values.GetValueOrDefault(k))} now"))];
    }

    private static string Show(string? value) => value is null ? "absent" : value.Length > 80 ? value[..77] + "..." : value;

    public string ToJson() => JsonSerializer.Serialize(_values,
        new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";

    public static RunIdentity FromJson(string json)
    {
        var identity = new RunIdentity();
        foreach (var (key, value) in JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? []) identity._values[key] = value;
        return identity;
    }

    /// <summary>
    /// The build of the assembly a method comes from (a plugin's, or the host's for a built-in method): its informational
    /// version and the SHA-256 of its file, so that a rebuilt plugin, which may compute another result, is another run.
    /// </summary>
    public static string BuildOf(System.Reflection.Assembly assembly)
    {
        var version = System.Reflection.CustomAttributeExtensions.GetCustomAttribute<System.Reflection.AssemblyInformationalVersionAttribute>(assembly)
            ?.InformationalVersion ?? assembly.GetName().Version?.ToString() ?? "?";
        var hash = assembly.Location is { Length: > 0 } file && File.Exists(file)
            ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file)))
            : "in-memory";
        return $"{assembly.GetName().Name} {version} sha256:{hash}";
    }
}
