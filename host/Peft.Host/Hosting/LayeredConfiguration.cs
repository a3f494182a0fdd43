using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Peft.Host.Hosting;

/// <summary>
/// Merges configuration layers so that a later layer replaces what it names as a whole. Microsoft.Extensions.Configuration
/// merges key by key instead: a list in a --config file (<c>"BatchSize": [8, 16]</c>) over a value in appsettings.json
/// (<c>"BatchSize": 64</c>) leaves both, and the binder then reads the value and drops the list without a word. Here a
/// layer that sets a key removes the earlier layers' value of it, their items under it and their values of the sections
/// above it; what remains is what the layers say, later winning, and a key holding both a value and items was given
/// both ways by one layer (an error for the binder).
/// </summary>
public static class LayeredConfiguration
{
    public static IConfigurationRoot Merge(IConfigurationRoot layered)
    {
        var merged = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in layered.Providers)
        {
            var layer = Keys(provider, null).ToList();
            foreach (var (key, _) in layer)
            {
                foreach (var stale in merged.Keys.Where(k => k.StartsWith(key + ConfigurationPath.KeyDelimiter, StringComparison.OrdinalIgnoreCase)).ToList())
                    merged.Remove(stale);
                for (var above = ConfigurationPath.GetParentPath(key); above is not null; above = ConfigurationPath.GetParentPath(above))
                    merged.Remove(above);
            }
            foreach (var (key, value) in layer) merged[key] = value;
        }
        return new ConfigurationBuilder().AddInMemoryCollection(merged).Build();
    }

    /// <summary>Every key a provider sets (an empty JSON array or object sets its key to null), with its value.</summary>
    private static IEnumerable<(string Key, string? Value)> Keys(IConfigurationProvider provider, string? parent)
    {
        foreach (var child in provider.GetChildKeys([], parent).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            var key = parent is null ? child : ConfigurationPath.Combine(parent, child);
            if (provider.TryGet(key, out var value)) yield return (key, value);
            foreach (var below in Keys(provider, key)) yield return below;
        }
    }
}

/// <summary>
/// Checks a JSON configuration file before Microsoft.Extensions.Configuration reads it, whose errors say only "Failed to
/// load configuration" around a duplicate key or a syntax error: the message here gives the file, the line and the reason.
/// Comments and trailing commas are allowed, as the JSON configuration provider allows them.
/// </summary>
public static class JsonConfigurationFile
{
    /// <exception cref="ConfigurationFileException">The file is not a JSON object, or names one key twice in an object.</exception>
    public static void Check(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var objects = new Stack<(HashSet<string> Keys, string Path)>();
        var paths = new Stack<string>();
        string? property = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        if (objects.Count == 0 && paths.Count == 0 && reader.TokenType != JsonTokenType.StartObject)
                            throw Error(path, bytes, reader.TokenStartIndex, "the configuration must be a JSON object");
                        var at = Child(paths, property, objects.Count > 0 || paths.Count > 0);
                        paths.Push(at);
                        if (reader.TokenType == JsonTokenType.StartObject)
                            objects.Push((new HashSet<string>(StringComparer.OrdinalIgnoreCase), at));
                        property = null;
                        break;
                    case JsonTokenType.EndObject:
                        objects.Pop();
                        paths.Pop();
                        break;
                    case JsonTokenType.EndArray:
                        paths.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        property = reader.GetString()!;
                        var (keys, parent) = objects.Peek();
                        // Configuration keys ignore case: "epochs" and "Epochs" are the same key.
                        if (!keys.Add(property))
                            throw Error(path, bytes, reader.TokenStartIndex,
                                $"the key '{(parent.Length == 0 ? property : parent + ":" + property)}' is given twice in one object");
                        break;
                    default:
                        if (objects.Count == 0 && paths.Count == 0)
                            throw Error(path, bytes, reader.TokenStartIndex, "the configuration must be a JSON object");
                        property = null;
                        break;
                }
            }
        }
        catch (JsonException e)
        {
            // "'}' is an invalid start of a value. LineNumber: 3 | BytePositionInLine: 0.": the position is given as a line.
            var reason = e.Message;
            var cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut > 0) reason = reason[..cut];
            throw new ConfigurationFileException($"{path}:{(e.LineNumber ?? 0) + 1}: invalid JSON: {reason.TrimEnd('.')}");
        }
    }

    private static string Child(Stack<string> paths, string? property, bool nested)
    {
        if (!nested) return "";
        var parent = paths.Peek();
        var key = property ?? "*";
        return parent.Length == 0 ? key : parent + ":" + key;
    }

    private static ConfigurationFileException Error(string path, byte[] bytes, long index, string reason)
    {
        var line = 1 + bytes.AsSpan(0, (int)index).Count((byte)'\n');
        return new ConfigurationFileException($"{path}:{line}: {reason}");
    }
}
