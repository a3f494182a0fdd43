using Microsoft.Extensions.Configuration;

namespace Peft.Configuration;

/// <summary>
/// Reads the keys of one configuration section for generated <c>Bind</c> methods. Every problem becomes a
/// <see cref="ConfigIssue"/>; nothing throws. A key that is absent, or whose value is invalid, keeps its default.
/// </summary>
public sealed class SectionReader
{
    private readonly IConfiguration _section;
    private readonly string _path;
    private readonly List<ConfigIssue> _issues;

    /// <summary>
    /// Starts reading <paramref name="section"/> (found at <paramref name="path"/>) and reports every key in it
    /// that is not one of <paramref name="knownKeys"/> (compared ignoring case), with a did-you-mean suggestion.
    /// </summary>
    public SectionReader(IConfiguration section, string path, List<ConfigIssue> issues, params string[] knownKeys)
    {
        _section = section;
        _path = path;
        _issues = issues;
        foreach (var child in section.GetChildren())
        {
            if (!knownKeys.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                issues.Add(ConfigIssue.UnknownKey(ConfigPath.Combine(path, child.Key), DidYouMean.Suggest(child.Key, knownKeys)));
            }
        }
    }

    /// <summary>A scalar value. For a nullable reference property the fallback may be <see langword="null"/>.</summary>
    public T Scalar<T>(string key, T fallback, ValueParser<T> parser) =>
        TryReadScalar(_section.GetSection(key), ConfigPath.Combine(_path, key), parser, out var value) ? value : fallback;

    /// <summary>A nullable scalar value; an empty value sets it to <see langword="null"/>.</summary>
    public T? NullableScalar<T>(string key, T? fallback, ValueParser<T> parser)
        where T : struct
    {
        var child = _section.GetSection(key);
        if (child.Value is { Length: 0 })
        {
            return null;
        }

        return TryReadScalar(child, ConfigPath.Combine(_path, key), parser, out var value) ? value : fallback;
    }

    /// <summary>A nested hyperparameter record, bound on top of <paramref name="fallback"/>.</summary>
    public T Nested<T>(string key, T fallback)
        where T : class, IHyperParameters<T> =>
        TryReadNested(_section.GetSection(key), ConfigPath.Combine(_path, key), fallback, out var value) ? value : fallback;

    /// <summary>
    /// An array of scalars from indexed children (<c>Key:0</c>, <c>Key:1</c>, …) or a comma separated value;
    /// <see langword="null"/> when the key is absent.
    /// </summary>
    public T[]? Array<T>(string key, ValueParser<T> parser) => ReadScalars(key, parser)?.ToArray();

    /// <summary>
    /// A list of scalars from indexed children (<c>Key:0</c>, <c>Key:1</c>, …) or a comma separated value;
    /// <see langword="null"/> when the key is absent.
    /// </summary>
    public List<T>? List<T>(string key, ValueParser<T> parser) => ReadScalars(key, parser);

    /// <summary>An array of nested records, one per indexed child; <see langword="null"/> when the key is absent.</summary>
    public T[]? NestedArray<T>(string key)
        where T : class, IHyperParameters<T> =>
        ReadNested<T>(key)?.ToArray();

    /// <summary>A list of nested records, one per indexed child; <see langword="null"/> when the key is absent.</summary>
    public List<T>? NestedList<T>(string key)
        where T : class, IHyperParameters<T> =>
        ReadNested<T>(key);

    private List<T>? ReadScalars<T>(string key, ValueParser<T> parser)
    {
        var child = _section.GetSection(key);
        var path = ConfigPath.Combine(_path, key);
        if (child.Value is { } text)
        {
            if (child.GetChildren().Any())
            {
                // One layer gave both forms (Key=1,2 and Key:0=3): neither may win silently.
                _issues.Add(ConfigIssue.InvalidType(path, $"{parser.Expectation} or a list of them", $"both {ConfigFormat.Quote(text)} and {Shape(child)}"));
                return null;
            }

            return ReadCommaSeparated(text, path, parser);
        }

        return ReadElements(child, path, (IConfigurationSection element, string elementPath, out T value) =>
            TryReadScalar(element, elementPath, parser, out value));
    }

    private List<T>? ReadNested<T>(string key)
        where T : class, IHyperParameters<T>
    {
        var child = _section.GetSection(key);
        var path = ConfigPath.Combine(_path, key);
        if (child.Value is { Length: > 0 } text)
        {
            _issues.Add(ConfigIssue.InvalidType(path, "a list of sections", ConfigFormat.Quote(text)));
            return null;
        }

        return child.Value is not null
            ? []
            : ReadElements(child, path, (IConfigurationSection element, string elementPath, out T value) =>
                TryReadNested(element, elementPath, null, out value));
    }

    private List<T> ReadCommaSeparated<T>(string text, string path, ValueParser<T> parser)
    {
        var values = new List<T>();
        if (text.Trim().Length == 0)
        {
            return values;
        }

        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        for (var i = 0; i < parts.Length; i++)
        {
            if (parser.TryParse(parts[i], out var value))
            {
                values.Add(value);
            }
            else
            {
                _issues.Add(ConfigIssue.InvalidType(ConfigPath.Combine(path, i), parser.Expectation, ConfigFormat.Quote(parts[i]), parser.Suggest(parts[i])));
            }
        }

        return values;
    }

    private delegate bool ElementReader<T>(IConfigurationSection element, string path, out T value);

    private List<T>? ReadElements<T>(IConfigurationSection section, string path, ElementReader<T> readElement)
    {
        var elements = section.GetChildren().ToList();
        if (elements.Count == 0)
        {
            return null;
        }

        // Items are numbered 0..n-1 (a JSON array, or Key:0, Key:1 overrides); Key:1 alone would otherwise bind as item 0.
        if (!elements.Select(element => element.Key).SequenceEqual(Enumerable.Range(0, elements.Count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))))
        {
            _issues.Add(ConfigIssue.Custom(path, $"{path} must be a list whose items are numbered from 0 (found {string.Join(", ", elements.Select(element => ConfigPath.Combine(path, element.Key)))})"));
            return null;
        }

        var values = new List<T>(elements.Count);
        foreach (var element in elements)
        {
            if (readElement(element, ConfigPath.Combine(path, element.Key), out var value))
            {
                values.Add(value);
            }
        }

        return values;
    }

    private bool TryReadScalar<T>(IConfigurationSection child, string path, ValueParser<T> parser, out T value)
    {
        value = default!;
        var nested = child.GetChildren().Any();
        if (child.Value is { } text)
        {
            if (nested)
            {
                _issues.Add(ConfigIssue.InvalidType(path, parser.Expectation, $"both {ConfigFormat.Quote(text)} and {Shape(child)}"));
                return false;
            }

            if (parser.TryParse(text, out value))
            {
                return true;
            }

            _issues.Add(ConfigIssue.InvalidType(path, parser.Expectation, ConfigFormat.Quote(text), parser.Suggest(text)));
        }
        else if (nested)
        {
            _issues.Add(ConfigIssue.InvalidType(path, parser.Expectation, Shape(child)));
        }

        return false;
    }

    /// <summary>"a list" for children numbered 0, 1, ... (a JSON array), else "a section".</summary>
    private static string Shape(IConfigurationSection section) =>
        section.GetChildren().All(element => int.TryParse(element.Key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
            ? "a list"
            : "a section";

    private bool TryReadNested<T>(IConfigurationSection child, string path, T? basis, out T value)
        where T : class, IHyperParameters<T>
    {
        value = default!;
        if (child.Value is { Length: > 0 } text)
        {
            _issues.Add(ConfigIssue.InvalidType(path, "a section", ConfigFormat.Quote(text)));
            return false;
        }

        if (child.Value is null && !child.GetChildren().Any())
        {
            return false;
        }

        value = T.Bind(child, path, _issues, basis);
        return true;
    }
}
