using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Peft.Generators;

/// <summary>Everything the emitter needs about one [HyperParameters] type; no symbols or syntax.</summary>
internal sealed record TypeModel(
    string? Namespace,
    EquatableArray<string> ContainingTypes,
    string Keyword,
    string Name,
    string FullName,
    string? Section,
    string? Description,
    EquatableArray<PropertyModel> Properties)
{
    /// <summary>The type as generated code refers to it, e.g. <c>global::Sample.Outer.Options</c>.</summary>
    public string GlobalName => "global::" + FullName;
}

/// <summary>How a property is read from configuration.</summary>
internal enum ValueKind
{
    /// <summary>A primitive, string or enum, converted by a ValueParser.</summary>
    Scalar,

    /// <summary>Another [HyperParameters] type, bound recursively.</summary>
    Nested,
}

/// <summary>Whether a property holds one value or a collection of them.</summary>
internal enum CollectionKind
{
    None,
    Array,
    List,
}

/// <summary>One bound property.</summary>
/// <param name="TypeDisplay">The property type as the description table shows it.</param>
/// <param name="ElementType">The global name of the (element) type: the scalar, enum or nested type.</param>
/// <param name="Parser">For scalars, the expression of the ValueParser to use.</param>
/// <param name="JsonType">For scalars, the JSON Schema type ("integer", "number", "boolean", "string").</param>
/// <param name="IsNullable">A nullable value type or a nullable-annotated reference type.</param>
/// <param name="EnumMembers">For enums, the member names.</param>
/// <param name="DefaultJson">The JSON text of a constant initializer, if any.</param>
internal sealed record PropertyModel(
    string Name,
    string TypeDisplay,
    ValueKind Kind,
    CollectionKind Collection,
    string ElementType,
    string? Parser,
    string? JsonType,
    bool IsNullable,
    bool IsValueType,
    EquatableArray<string> EnumMembers,
    RangeModel? Range,
    bool Required,
    EquatableArray<ConstantModel> AllowedValues,
    string? Description,
    string? DefaultJson);

/// <summary>The bounds of a [Range], already checked against the property type.</summary>
internal sealed record RangeModel(ConstantModel Minimum, ConstantModel Maximum);

/// <summary>A constant as C# source, as JSON and as a description table shows it.</summary>
internal sealed record ConstantModel(string CSharp, string Json, string Display);

/// <summary>A diagnostic as plain data; the Location is recreated when it is reported.</summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] arguments) =>
        new(descriptor, LocationInfo.From(location), arguments.ToEquatableArray());

    public Diagnostic ToDiagnostic() =>
        Diagnostic.Create(Descriptor, Location?.ToLocation(), [.. Arguments]);
}

/// <summary>A source location as plain data.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan TextSpan, LinePositionSpan LineSpan)
{
    public static LocationInfo? From(Location? location) =>
        location is { IsInSource: true, SourceTree: { } tree }
            ? new LocationInfo(tree.FilePath, location.SourceSpan, location.GetLineSpan().Span)
            : null;

    public Location ToLocation() => Location.Create(FilePath, TextSpan, LineSpan);
}

/// <summary>What parsing one attributed type yields: a model when it is usable, and its diagnostics.</summary>
internal sealed record ParseResult(TypeModel? Model, EquatableArray<DiagnosticInfo> Diagnostics);
