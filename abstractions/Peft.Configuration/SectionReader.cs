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
        if (child.Value is { } text)
        {
            return ReadCommaSeparated(text, ConfigPath.Combine(_path, key), parser);
        }

        return ReadElements(child, ConfigPath.Combine(_path, key), (IConfigurationSection element, string path, out T value) =>
            TryReadScalar(element, path, parser, out value));
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

    private static List<T>? ReadElements<T>(IConfigurationSection section, string path, ElementReader<T> readElement)
    {
        var elements = section.GetChildren().ToList();
        if (elements.Count == 0)
        {
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
        if (child.Value is { } text)
        {
            if (parser.TryParse(text, out value))
            {
                return true;
            }

            _issues.Add(ConfigIssue.InvalidType(path, parser.Expectation, ConfigFormat.Quote(text), parser.Suggest(text)));
        }
        else if (child.GetChildren().Any())
        {
            _issues.Add(ConfigIssue.InvalidType(path, parser.Expectation, "a section"));
        }

        return false;
    }

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
