using Microsoft.CodeAnalysis;

namespace Peft.Generators;

/// <summary>The diagnostics the generator reports for misuse of the Peft.Configuration attributes.</summary>
internal static class Diagnostics
{
    private const string Category = "Peft.Configuration";

    public static readonly DiagnosticDescriptor NotPartial = Create(
        "PEFT001",
        "Hyperparameter type must be partial",
        "'{0}' must be declared partial, and so must every type containing it, for [HyperParameters] to generate code into it");

    public static readonly DiagnosticDescriptor UnsupportedType = Create(
        "PEFT002",
        "Unsupported hyperparameter property type",
        "Property '{0}' has type '{1}', which cannot be bound from configuration; use a primitive, string, enum, nullable, array or list of those, or a [HyperParameters] type");

    public static readonly DiagnosticDescriptor InvalidAttribute = Create(
        "PEFT003",
        "Validation attribute does not fit the property",
        "[{0}] on property '{1}': {2}");

    public static readonly DiagnosticDescriptor DuplicateKey = Create(
        "PEFT004",
        "Properties collide in configuration",
        "Properties '{0}' and '{1}' differ only by case and would bind the same configuration key");

    public static readonly DiagnosticDescriptor NoParameterlessConstructor = Create(
        "PEFT005",
        "Hyperparameter type needs a parameterless constructor",
        "'{0}' needs a parameterless constructor (and no primary constructor): defaults come from 'new {0}()'");

    public static readonly DiagnosticDescriptor NotSupportedShape = Create(
        "PEFT006",
        "Hyperparameter type must be non-generic and visible in its assembly",
        "'{0}' must not be generic, nor nested in a generic type, nor private or protected");

    public static readonly DiagnosticDescriptor RequiredOnValueType = Create(
        "PEFT007",
        "[Required] has no effect on a non-nullable value type",
        "[Required] on property '{0}' has no effect because a '{1}' always has a value; make it nullable to require it",
        DiagnosticSeverity.Warning);

    private static DiagnosticDescriptor Create(string id, string title, string message, DiagnosticSeverity severity = DiagnosticSeverity.Error) =>
        new(id, title, message, Category, severity, isEnabledByDefault: true);
}
