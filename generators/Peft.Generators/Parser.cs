using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Peft.Generators;

/// <summary>Reads one [HyperParameters] type into a <see cref="TypeModel"/> and the diagnostics for its misuse.</summary>
internal sealed class Parser
{
    public const string Namespace = "Peft.Configuration";
    public const string HyperParametersAttribute = Namespace + ".HyperParametersAttribute";
    private const string RangeAttribute = Namespace + ".RangeAttribute";
    private const string RequiredAttribute = Namespace + ".RequiredAttribute";
    private const string AllowedValuesAttribute = Namespace + ".AllowedValuesAttribute";
    private const string DescriptionAttribute = Namespace + ".DescriptionAttribute";

    private static readonly Dictionary<SpecialType, (string Parser, string Json)> Scalars = new()
    {
        [SpecialType.System_Boolean] = ("Boolean", "boolean"),
        [SpecialType.System_Char] = ("Char", "string"),
        [SpecialType.System_String] = ("String", "string"),
        [SpecialType.System_SByte] = ("SByte", "integer"),
        [SpecialType.System_Byte] = ("Byte", "integer"),
        [SpecialType.System_Int16] = ("Int16", "integer"),
        [SpecialType.System_UInt16] = ("UInt16", "integer"),
        [SpecialType.System_Int32] = ("Int32", "integer"),
        [SpecialType.System_UInt32] = ("UInt32", "integer"),
        [SpecialType.System_Int64] = ("Int64", "integer"),
        [SpecialType.System_UInt64] = ("UInt64", "integer"),
        [SpecialType.System_Single] = ("Single", "number"),
        [SpecialType.System_Double] = ("Double", "number"),
        [SpecialType.System_Decimal] = ("Decimal", "number"),
    };

    private static readonly string[] ListInterfaces =
    [
        "System.Collections.Generic.List<T>",
        "System.Collections.Generic.IList<T>",
        "System.Collections.Generic.IReadOnlyList<T>",
        "System.Collections.Generic.ICollection<T>",
        "System.Collections.Generic.IReadOnlyCollection<T>",
        "System.Collections.Generic.IEnumerable<T>",
    ];

    private readonly Compilation _compilation;
    private readonly List<DiagnosticInfo> _diagnostics = [];

    private Parser(Compilation compilation) => _compilation = compilation;

    public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var type = (INamedTypeSymbol)context.TargetSymbol;
        var parser = new Parser(context.SemanticModel.Compilation);
        var location = ((TypeDeclarationSyntax)context.TargetNode).Identifier.GetLocation();
        var model = parser.ParseType(type, context.Attributes[0], location, cancellationToken);
        return new ParseResult(model, parser._diagnostics.ToEquatableArray());
    }

    private TypeModel? ParseType(INamedTypeSymbol type, AttributeData attribute, Location location, CancellationToken cancellationToken)
    {
        var name = type.Name;
        var containers = Containers(type);
        if (!containers.Prepend(type).All(IsPartial))
        {
            Report(Diagnostics.NotPartial, location, name);
        }

        if (containers.Prepend(type).Any(t => t.IsGenericType || t.DeclaredAccessibility is Accessibility.Private
                or Accessibility.Protected or Accessibility.ProtectedAndInternal))
        {
            Report(Diagnostics.NotSupportedShape, location, name);
        }

        if (!type.InstanceConstructors.Any(ctor => ctor.Parameters.IsEmpty))
        {
            Report(Diagnostics.NoParameterlessConstructor, location, name);
        }

        var properties = new List<PropertyModel>();
        foreach (var property in BindableProperties(type))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (properties.FirstOrDefault(p => string.Equals(p.Name, property.Name, StringComparison.OrdinalIgnoreCase)) is { } clash)
            {
                Report(Diagnostics.DuplicateKey, property.Locations.FirstOrDefault(), clash.Name, property.Name);
                continue;
            }

            if (ParseProperty(property) is { } model)
            {
                properties.Add(model);
            }
        }

        if (_diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error))
        {
            return null;
        }

        return new TypeModel(
            type.ContainingNamespace.IsGlobalNamespace ? null : type.ContainingNamespace.ToDisplayString(),
            containers.Reverse().Select(Declaration).ToEquatableArray(),
            type.IsRecord ? "record" : "class",
            name,
            type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat).Substring("global::".Length),
            attribute.ConstructorArguments.FirstOrDefault().Value as string,
            Description(type),
            properties.ToEquatableArray());
    }

    private PropertyModel? ParseProperty(IPropertySymbol property)
    {
        var location = property.Locations.FirstOrDefault();
        var type = property.Type;
        var collection = CollectionKind.None;
        if (ElementOf(type) is { } element)
        {
            collection = type is IArrayTypeSymbol ? CollectionKind.Array : CollectionKind.List;
            type = element;
        }

        var isNullableValue = type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T };
        var underlying = isNullableValue && collection == CollectionKind.None ? ((INamedTypeSymbol)type).TypeArguments[0] : type;
        var typeDisplay = property.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat);
        var shape = Classify(underlying);
        if (shape is null)
        {
            Report(Diagnostics.UnsupportedType, location, property.Name, typeDisplay);
            return null;
        }

        var (kind, parser, json) = shape.Value;
        var isNullable = isNullableValue || (!property.Type.IsValueType && property.NullableAnnotation == NullableAnnotation.Annotated);
        var enumMembers = underlying.TypeKind == TypeKind.Enum
            ? underlying.GetMembers().OfType<IFieldSymbol>().Where(f => f.HasConstantValue).Select(f => f.Name).ToEquatableArray()
            : default;
        var scalarType = collection == CollectionKind.None && kind == ValueKind.Scalar ? underlying : null;
        var required = HasAttribute(property, RequiredAttribute);
        if (required && property.Type.IsValueType && !isNullableValue)
        {
            Report(Diagnostics.RequiredOnValueType, location, property.Name, typeDisplay);
        }

        return new PropertyModel(
            property.Name,
            typeDisplay,
            kind,
            collection,
            underlying.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            parser,
            json,
            isNullable,
            property.Type.IsValueType,
            enumMembers,
            ParseRange(property, scalarType, typeDisplay),
            required,
            ParseAllowedValues(property, scalarType, typeDisplay),
            Description(property),
            scalarType is null ? null : Constants.DefaultJson(InitializerConstant(property), scalarType));
    }

    private (ValueKind Kind, string? Parser, string? Json)? Classify(ITypeSymbol type)
    {
        if (Scalars.TryGetValue(type.SpecialType, out var scalar))
        {
            return (ValueKind.Scalar, $"global::{Namespace}.ValueParsers.{scalar.Parser}", scalar.Json);
        }

        if (type.TypeKind == TypeKind.Enum)
        {
            return (ValueKind.Scalar, null, "string");
        }

        if (type is INamedTypeSymbol { TypeKind: TypeKind.Class } named && HasAttribute(named, HyperParametersAttribute))
        {
            return (ValueKind.Nested, null, null);
        }

        return null;
    }

    private static ITypeSymbol? ElementOf(ITypeSymbol type) => type switch
    {
        IArrayTypeSymbol { Rank: 1 } array => array.ElementType,
        INamedTypeSymbol { IsGenericType: true } named
            when ListInterfaces.Contains(named.OriginalDefinition.ToDisplayString()) => named.TypeArguments[0],
        _ => null,
    };

    private RangeModel? ParseRange(IPropertySymbol property, ITypeSymbol? scalarType, string typeDisplay)
    {
        if (Attribute(property, RangeAttribute) is not { ConstructorArguments.Length: 2 } range)
        {
            return null;
        }

        var (min, max) = (range.ConstructorArguments[0], range.ConstructorArguments[1]);

        var location = AttributeLocation(range, property);
        if (scalarType is null || !Constants.IsNumeric(scalarType.SpecialType))
        {
            Report(Diagnostics.InvalidAttribute, location, "Range", property.Name, $"it applies to numeric properties, not '{typeDisplay}'");
            return null;
        }

        var minimum = Constants.Number(min.Value, scalarType, out var minError);
        var maximum = Constants.Number(max.Value, scalarType, out var maxError);
        if ((minError ?? maxError) is { } error)
        {
            Report(Diagnostics.InvalidAttribute, location, "Range", property.Name, error);
            return null;
        }

        if ((double)min.Value! > (double)max.Value!)
        {
            Report(Diagnostics.InvalidAttribute, location, "Range", property.Name,
                $"the minimum {minimum!.Display} is greater than the maximum {maximum!.Display}");
            return null;
        }

        return new RangeModel(minimum!, maximum!);
    }

    private EquatableArray<ConstantModel> ParseAllowedValues(IPropertySymbol property, ITypeSymbol? scalarType, string typeDisplay)
    {
        if (Attribute(property, AllowedValuesAttribute) is not { ConstructorArguments.Length: 1 } allowed)
        {
            return default;
        }

        var values = allowed.ConstructorArguments[0];

        var location = AttributeLocation(allowed, property);
        if (scalarType is null || scalarType.SpecialType is SpecialType.System_Boolean or SpecialType.System_Char)
        {
            Report(Diagnostics.InvalidAttribute, location, "AllowedValues", property.Name,
                $"it applies to string, enum and numeric properties, not '{typeDisplay}'");
            return default;
        }

        var constants = new List<ConstantModel>();
        foreach (var value in values.Values)
        {
            string? error = null;
            var constant = scalarType switch
            {
                { SpecialType: SpecialType.System_String } => value.Value is string text
                    ? Constants.String(text)
                    : Fail($"{value.ToCSharpString()} is not a string", out error),
                INamedTypeSymbol { TypeKind: TypeKind.Enum } enumType => Constants.EnumMember(value.Value, enumType, out error),
                _ => Constants.Number(value.Value, scalarType, out error),
            };
            if (constant is null)
            {
                Report(Diagnostics.InvalidAttribute, location, "AllowedValues", property.Name, error!);
                return default;
            }

            constants.Add(constant);
        }

        return constants.ToEquatableArray();

        static ConstantModel? Fail(string message, out string? error)
        {
            error = message;
            return null;
        }
    }

    private Optional<object?> InitializerConstant(IPropertySymbol property)
    {
        foreach (var reference in property.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax() is PropertyDeclarationSyntax { Initializer.Value: var value })
            {
                return _compilation.GetSemanticModel(value.SyntaxTree).GetConstantValue(value);
            }
        }

        return default;
    }

    /// <summary>Public instance properties with a getter and a setter or init accessor, own and inherited.</summary>
    private static IEnumerable<IPropertySymbol> BindableProperties(INamedTypeSymbol type)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var current = type; current is { SpecialType: not SpecialType.System_Object }; current = current.BaseType)
        {
            foreach (var property in current.GetMembers().OfType<IPropertySymbol>())
            {
                if (property is { IsStatic: false, IsIndexer: false, DeclaredAccessibility: Accessibility.Public, GetMethod: not null, SetMethod: { } setter }
                    && (SymbolEqualityComparer.Default.Equals(current, type) || setter.DeclaredAccessibility == Accessibility.Public)
                    && seen.Add(property.Name))
                {
                    yield return property;
                }
            }
        }
    }

    private static ImmutableArray<INamedTypeSymbol> Containers(INamedTypeSymbol type)
    {
        var builder = ImmutableArray.CreateBuilder<INamedTypeSymbol>();
        for (var container = type.ContainingType; container is not null; container = container.ContainingType)
        {
            builder.Add(container);
        }

        return builder.ToImmutable();
    }

    private static bool IsPartial(INamedTypeSymbol type) =>
        type.DeclaringSyntaxReferences.Any(reference =>
            reference.GetSyntax() is TypeDeclarationSyntax declaration && declaration.Modifiers.Any(SyntaxKind.PartialKeyword));

    private static string Declaration(INamedTypeSymbol type)
    {
        var keyword = (type.IsRecord, type.TypeKind) switch
        {
            (true, TypeKind.Struct) => "record struct",
            (true, _) => "record",
            (_, TypeKind.Struct) => "struct",
            (_, TypeKind.Interface) => "interface",
            _ => "class",
        };
        return $"partial {keyword} {type.Name}";
    }

    private static string? Description(ISymbol symbol) =>
        Attribute(symbol, DescriptionAttribute)?.ConstructorArguments.FirstOrDefault().Value as string;

    private static bool HasAttribute(ISymbol symbol, string name) => Attribute(symbol, name) is not null;

    private static AttributeData? Attribute(ISymbol symbol, string name) =>
        symbol.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == name);

    private static Location? AttributeLocation(AttributeData attribute, IPropertySymbol property) =>
        attribute.ApplicationSyntaxReference?.GetSyntax().GetLocation() ?? property.Locations.FirstOrDefault();

    private void Report(DiagnosticDescriptor descriptor, Location? location, params string[] arguments) =>
        _diagnostics.Add(DiagnosticInfo.Create(descriptor, location, arguments));
}
