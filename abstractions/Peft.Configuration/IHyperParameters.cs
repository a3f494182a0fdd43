using Microsoft.Extensions.Configuration;

namespace Peft.Configuration;

/// <summary>The instance side of a generated hyperparameter record.</summary>
public interface IHyperParameters
{
    /// <summary>
    /// Adds every rule violation (ranges, required values, allowed values, nested records and the optional
    /// <c>ValidateCustom</c> hook) to <paramref name="issues"/>, each naming its full path below <paramref name="path"/>.
    /// </summary>
    void Validate(string path, List<ConfigIssue> issues);

    /// <summary>Writes the bound values in canonical form (properties sorted by name) for <see cref="ContentHash"/>.</summary>
    void WriteCanonical(CanonicalWriter writer);

    /// <summary>A stable hash of the bound values: the first 16 hex digits of the SHA-256 of the canonical text.</summary>
    string ContentHash();
}

/// <summary>
/// The static side of a generated hyperparameter record, so hosts can bind, validate and describe it
/// knowing only a generic parameter. <see cref="HyperParameters"/> and <see cref="HyperParametersInfo"/> build on it.
/// </summary>
public interface IHyperParameters<TSelf> : IHyperParameters
    where TSelf : class, IHyperParameters<TSelf>
{
    /// <summary>The default configuration path given by <see cref="HyperParametersAttribute.Section"/>, if any.</summary>
    static abstract string? SectionName { get; }

    /// <summary>A JSON Schema (draft 2020-12) fragment describing the record: an object with its properties.</summary>
    static abstract string JsonSchema { get; }

    /// <summary>
    /// Binds <paramref name="section"/> onto <paramref name="basis"/> (or onto a new instance with its defaults):
    /// present keys overwrite, absent keys keep their value. Conversion problems and unknown keys are added to
    /// <paramref name="issues"/>; validation is separate (<see cref="IHyperParameters.Validate"/>).
    /// </summary>
    static abstract TSelf Bind(IConfiguration section, string path, List<ConfigIssue> issues, TSelf? basis = null);

    /// <summary>One row per option (nested records flattened as <c>Outer:Inner</c>), defaults taken from <paramref name="defaults"/>.</summary>
    static abstract IReadOnlyList<OptionDescription> Describe(TSelf? defaults = null);
}

/// <summary>One row of the CLI description table of a hyperparameter record.</summary>
/// <param name="Name">The configuration key below the record's section, e.g. <c>Optimizer:LearningRate</c>.</param>
/// <param name="Type">The C# type, e.g. <c>int</c> or <c>List&lt;string&gt;</c>.</param>
/// <param name="Default">The default value as <see cref="ConfigFormat.Value"/> writes it.</param>
/// <param name="Range">The permitted values (<c>1..1000</c>, <c>one of 'a', 'b'</c>), or <see langword="null"/>.</param>
/// <param name="Description">The <see cref="DescriptionAttribute"/> text, or <see langword="null"/>.</param>
public sealed record OptionDescription(string Name, string Type, string Default, string? Range, string? Description)
{
    /// <summary>Prefixes the rows of a nested record with the key it is found under.</summary>
    public static IEnumerable<OptionDescription> Nest(string key, IEnumerable<OptionDescription> rows) =>
        rows.Select(row => row with { Name = ConfigPath.Combine(key, row.Name) });
}

/// <summary>The outcome of binding and validating one record.</summary>
/// <param name="Value">The bound value; keys that had problems keep their defaults.</param>
/// <param name="Issues">Every problem found; empty when the configuration is valid.</param>
public sealed record BindResult<T>(T Value, IReadOnlyList<ConfigIssue> Issues)
{
    /// <summary>Whether no issue was found.</summary>
    public bool IsValid => Issues.Count == 0;

    /// <summary>The value, or a <see cref="ConfigurationException"/> listing every issue.</summary>
    public T GetValueOrThrow() => IsValid ? Value : throw new ConfigurationException(Issues);
}
