namespace Peft.Configuration;

/// <summary>One problem found while binding or validating configuration.</summary>
/// <param name="Path">The full configuration path, e.g. <c>Method:Options:PromptTokens</c>.</param>
/// <param name="Rule">Which rule was broken; one of the <see cref="ConfigRules"/> names or a custom one.</param>
/// <param name="Found">The offending value as text, or <see langword="null"/> when there is none.</param>
/// <param name="Message">The complete, human readable message.</param>
public sealed record ConfigIssue(string Path, string Rule, string? Found, string Message)
{
    /// <summary>A value that cannot be converted: <c>X must be an integer (found 'abc')</c>.</summary>
    public static ConfigIssue InvalidType(string path, string expectation, string found, string? suggestion = null) =>
        new(path, ConfigRules.Type, found, $"{path} must be {expectation} (found {found})" + (suggestion is null ? "" : $"; did you mean {suggestion}?"));

    /// <summary>A number outside its range: <c>X must be between 1 and 1000 (found 0)</c>.</summary>
    public static ConfigIssue OutOfRange(string path, string minimum, string maximum, string found) =>
        new(path, ConfigRules.Range, found, $"{path} must be between {minimum} and {maximum} (found {found})");

    /// <summary>A missing value: <c>X is required</c>.</summary>
    public static ConfigIssue Missing(string path) =>
        new(path, ConfigRules.Required, null, $"{path} is required");

    /// <summary>A value outside a fixed set: <c>X must be one of 'a', 'b' (found 'c')</c>.</summary>
    public static ConfigIssue NotAllowed(string path, string allowed, string found) =>
        new(path, ConfigRules.AllowedValues, found, $"{path} must be one of {allowed} (found {found})");

    /// <summary>A key no property matches, with an optional near-miss suggestion.</summary>
    public static ConfigIssue UnknownKey(string path, string? suggestion) =>
        new(path, ConfigRules.Unknown, null, suggestion is null
            ? $"{path} is not a known option"
            : $"{path} is not a known option; did you mean {suggestion}?");

    /// <summary>A problem found by a hand-written cross-field rule.</summary>
    public static ConfigIssue Custom(string path, string message, string? found = null) =>
        new(path, ConfigRules.Custom, found, message);

    /// <inheritdoc />
    public override string ToString() => Message;
}

/// <summary>The names of the built-in rules a <see cref="ConfigIssue"/> can report.</summary>
public static class ConfigRules
{
    /// <summary>The value could not be converted to the property's type.</summary>
    public const string Type = "type";

    /// <summary>A <see cref="RangeAttribute"/> was violated.</summary>
    public const string Range = "range";

    /// <summary>A <see cref="RequiredAttribute"/> was violated.</summary>
    public const string Required = "required";

    /// <summary>An <see cref="AllowedValuesAttribute"/> was violated.</summary>
    public const string AllowedValues = "allowed-values";

    /// <summary>The configuration contains a key that no property matches.</summary>
    public const string Unknown = "unknown-key";

    /// <summary>A rule written by hand in a <c>ValidateCustom</c> hook.</summary>
    public const string Custom = "custom";
}

/// <summary>Thrown when configuration is invalid; carries every issue found, not just the first.</summary>
public sealed class ConfigurationException : Exception
{
    /// <summary>Creates the exception from the issues found.</summary>
    public ConfigurationException(IReadOnlyList<ConfigIssue> issues)
        : base(FormatMessage(issues)) => Issues = issues;

    /// <summary>Every issue found.</summary>
    public IReadOnlyList<ConfigIssue> Issues { get; }

    private static string FormatMessage(IReadOnlyList<ConfigIssue> issues) =>
        issues.Count == 1
            ? $"Invalid configuration: {issues[0].Message}"
            : $"Invalid configuration ({issues.Count} problems):{Environment.NewLine}"
              + string.Join(Environment.NewLine, issues.Select(issue => "  - " + issue.Message));
}
