namespace Peft.Configuration;

/// <summary>
/// Marks a partial record or class as a hyperparameter record. The Peft source generator implements
/// <see cref="IHyperParameters{TSelf}"/> for it: binding from configuration, validation, a JSON schema,
/// a description table and a content hash.
/// </summary>
/// <param name="section">
/// The configuration path the record binds from by default (for example <c>"Trainer"</c> or
/// <c>"Method:Options"</c>); <see langword="null"/> when only the host knows where it lives.
/// </param>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class HyperParametersAttribute(string? section = null) : Attribute
{
    /// <summary>The default configuration path of the record, if any.</summary>
    public string? Section { get; } = section;
}

/// <summary>Requires a numeric property to lie within <c>[Minimum, Maximum]</c>, both inclusive.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RangeAttribute(double minimum, double maximum) : Attribute
{
    /// <summary>The smallest allowed value.</summary>
    public double Minimum { get; } = minimum;

    /// <summary>The largest allowed value.</summary>
    public double Maximum { get; } = maximum;
}

/// <summary>
/// Requires a value: not <see langword="null"/>, not an empty or blank string, not an empty collection.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RequiredAttribute : Attribute;

/// <summary>Restricts a string, numeric or enum property to a fixed set of values.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class AllowedValuesAttribute(params object[] values) : Attribute
{
    /// <summary>The permitted values.</summary>
    public IReadOnlyList<object> Values { get; } = values;
}

/// <summary>Documents a hyperparameter record or property (JSON schema and CLI description table).</summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property)]
public sealed class DescriptionAttribute(string text) : Attribute
{
    /// <summary>The human readable description.</summary>
    public string Text { get; } = text;
}
