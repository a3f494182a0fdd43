using System.Collections;
using System.Globalization;

namespace Peft.Configuration;

/// <summary>Builds configuration paths the way Microsoft.Extensions.Configuration writes them.</summary>
public static class ConfigPath
{
    /// <summary>Joins <paramref name="path"/> and <paramref name="key"/> with ':'; an empty path yields the key.</summary>
    public static string Combine(string path, string key) => path.Length == 0 ? key : $"{path}:{key}";

    /// <summary>Joins <paramref name="path"/> and a collection index.</summary>
    public static string Combine(string path, int index) => Combine(path, index.ToString(CultureInfo.InvariantCulture));
}

/// <summary>Formats values for messages and description tables, independently of the current culture.</summary>
public static class ConfigFormat
{
    /// <summary>
    /// Strings are quoted (<c>'abc'</c>), numbers use the invariant culture (floating point round-trips),
    /// booleans are <c>true</c>/<c>false</c>, enums their name in lower case (as configuration writes it), collections are <c>[a, b]</c>.
    /// </summary>
    public static string Value(object? value) => value switch
    {
        null => "null",
        string text => Quote(text),
        bool flag => flag ? "true" : "false",
        char character => Quote(character.ToString()),
        double number => number.ToString("R", CultureInfo.InvariantCulture),
        float number => number.ToString("R", CultureInfo.InvariantCulture),
        Enum member => member.ToString().ToLowerInvariant(),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable items => "[" + string.Join(", ", items.Cast<object?>().Select(Value)) + "]",
        _ => value.ToString() ?? "",
    };

    /// <summary>Formats several values as a comma separated list, each as <see cref="Value"/> does.</summary>
    public static string List<T>(ReadOnlySpan<T> values)
    {
        var parts = new string[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            parts[i] = Value(values[i]);
        }

        return string.Join(", ", parts);
    }

    /// <summary>Wraps raw configuration text in single quotes; control characters (a NUL) are written as \u escapes.</summary>
    public static string Quote(string text) =>
        $"'{string.Concat(text.Select(c => c < ' ' ? $"\\u{(int)c:x4}" : c.ToString()))}'";
}
