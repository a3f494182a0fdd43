using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Peft.Generators;

/// <summary>Turns attribute arguments and initializers into constants of a property's type.</summary>
internal static class Constants
{
    private static readonly Dictionary<SpecialType, (decimal Min, decimal Max)> IntegralBounds = new()
    {
        [SpecialType.System_SByte] = (sbyte.MinValue, sbyte.MaxValue),
        [SpecialType.System_Byte] = (byte.MinValue, byte.MaxValue),
        [SpecialType.System_Int16] = (short.MinValue, short.MaxValue),
        [SpecialType.System_UInt16] = (ushort.MinValue, ushort.MaxValue),
        [SpecialType.System_Int32] = (int.MinValue, int.MaxValue),
        [SpecialType.System_UInt32] = (uint.MinValue, uint.MaxValue),
        [SpecialType.System_Int64] = (long.MinValue, long.MaxValue),
        [SpecialType.System_UInt64] = (ulong.MinValue, ulong.MaxValue),
    };

    public static bool IsNumeric(SpecialType type) =>
        IntegralBounds.ContainsKey(type)
        || type is SpecialType.System_Single or SpecialType.System_Double or SpecialType.System_Decimal;

    /// <summary>
    /// Converts a numeric constant to <paramref name="target"/>; returns the reason when it does not fit
    /// (not a number, not whole for an integral type, out of the type's range).
    /// </summary>
    public static ConstantModel? Number(object? value, ITypeSymbol target, out string? error)
    {
        error = null;
        if (value is null or string or bool or char)
        {
            error = $"{Show(value)} is not a number";
            return null;
        }

        var keyword = target.ToDisplayString();
        var number = Convert.ToDouble(value, CultureInfo.InvariantCulture);
        if (double.IsNaN(number) || double.IsInfinity(number))
        {
            error = $"{Show(value)} is not a finite number";
            return null;
        }

        switch (target.SpecialType)
        {
            case SpecialType.System_Single:
                var single = (float)number;
                if (float.IsInfinity(single))
                {
                    error = $"{Show(value)} is outside the range of '{keyword}'";
                    return null;
                }

                var singleText = single.ToString("R", CultureInfo.InvariantCulture);
                return new ConstantModel(singleText + "f", singleText, singleText);
            case SpecialType.System_Double:
                var doubleText = number.ToString("R", CultureInfo.InvariantCulture);
                return new ConstantModel(doubleText + "d", doubleText, doubleText);
            case SpecialType.System_Decimal when Math.Abs(number) < 7.9e28:
                var decimalText = ToDecimal(value).ToString(CultureInfo.InvariantCulture);
                return new ConstantModel(decimalText + "m", decimalText, decimalText);
            case var integral when IntegralBounds.TryGetValue(integral, out var bounds):
                if (Math.Floor(number) != number)
                {
                    error = $"{Show(value)} is not a whole number, as '{keyword}' requires";
                    return null;
                }

                if (Math.Abs(number) >= 7.9e28 || ToDecimal(value) is var whole && (whole < bounds.Min || whole > bounds.Max))
                {
                    error = $"{Show(value)} is outside the range of '{keyword}'";
                    return null;
                }

                var integerText = ToDecimal(value).ToString(CultureInfo.InvariantCulture);
                return new ConstantModel(integerText, integerText, integerText);
            default:
                error = $"{Show(value)} is outside the range of '{keyword}'";
                return null;
        }
    }

    /// <summary>Converts a string constant (for string properties).</summary>
    public static ConstantModel String(string text) =>
        new(SymbolDisplay.FormatLiteral(text, quote: true), Json(text), "'" + text + "'");

    /// <summary>Converts an enum constant or member name to a member of <paramref name="enumType"/>.</summary>
    public static ConstantModel? EnumMember(object? value, INamedTypeSymbol enumType, out string? error)
    {
        var member = enumType.GetMembers().OfType<IFieldSymbol>().FirstOrDefault(field =>
            field.HasConstantValue && (value is string name
                ? string.Equals(field.Name, name, StringComparison.OrdinalIgnoreCase)
                : Equals(field.ConstantValue, value)));
        error = member is null ? $"{Show(value)} is not a member of '{enumType.Name}'" : null;
        return member is null
            ? null
            : new ConstantModel($"global::{enumType.ToDisplayString()}.{member.Name}", Json(member.Name.ToLowerInvariant()), member.Name.ToLowerInvariant());
    }

    /// <summary>
    /// The JSON text of a constant initializer of a property whose (underlying) type is <paramref name="type"/>,
    /// or <see langword="null"/> when it cannot be written as JSON.
    /// </summary>
    public static string? DefaultJson(Optional<object?> constant, ITypeSymbol type)
    {
        if (!constant.HasValue)
        {
            return null;
        }

        return constant.Value switch
        {
            null => "null",
            string text when type.SpecialType == SpecialType.System_String => Json(text),
            char character => Json(character.ToString()),
            bool flag => flag ? "true" : "false",
            var value when type is INamedTypeSymbol { TypeKind: TypeKind.Enum } enumType => EnumMember(value, enumType, out _)?.Json,
            var value when IsNumeric(type.SpecialType) => Number(value, type, out _)?.Json,
            _ => null,
        };
    }

    /// <summary>A JSON string literal.</summary>
    public static string Json(string text)
    {
        var builder = new StringBuilder("\"");
        foreach (var c in text)
        {
            _ = c switch
            {
                '"' => builder.Append("\\\""),
                '\\' => builder.Append("\\\\"),
                '\n' => builder.Append("\\n"),
                '\r' => builder.Append("\\r"),
                '\t' => builder.Append("\\t"),
                < ' ' => builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)),
                _ => builder.Append(c),
            };
        }

        return builder.Append('"').ToString();
    }

    private static decimal ToDecimal(object value) => Convert.ToDecimal(value, CultureInfo.InvariantCulture);

    private static string Show(object? value) => value switch
    {
        null => "null",
        string text => "'" + text + "'",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };
}
