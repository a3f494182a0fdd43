using System.Globalization;
using System.Numerics;

namespace Peft.Configuration;

/// <summary>Converts configuration text to a value; returns <see langword="false"/> instead of throwing.</summary>
public delegate bool TryParseValue<T>(string text, out T value);

/// <summary>Converts configuration text to <typeparamref name="T"/> and says what it expects when it cannot.</summary>
/// <param name="expectation">Completes "X must be ...", e.g. <c>an integer</c>.</param>
/// <param name="tryParse">The conversion.</param>
/// <param name="suggest">For a fixed set of names: the nearest one to a value that is none of them.</param>
public sealed class ValueParser<T>(string expectation, TryParseValue<T> tryParse, Func<string, string?>? suggest = null)
{
    /// <summary>Completes "X must be ...", e.g. <c>an integer</c> or <c>one of Linear, Cosine</c>.</summary>
    public string Expectation { get; } = expectation;

    /// <summary>Converts <paramref name="text"/>; <see langword="false"/> when it is not a valid value.</summary>
    public bool TryParse(string text, out T value) => tryParse(text, out value);

    /// <summary>A near-miss suggestion for a value that does not parse, or <see langword="null"/>.</summary>
    public string? Suggest(string text) => suggest?.Invoke(text);
}

/// <summary>The parsers generated code uses for each supported scalar type. All use the invariant culture.</summary>
public static class ValueParsers
{
    private const NumberStyles Integer = NumberStyles.Integer;

    // No group separators: "0,5" is an error, never 5 (a comma also separates the items of a list).
    private const NumberStyles Float = NumberStyles.Float;

    /// <summary>Any text without a NUL character (which no file path or name can hold; the suggestion drops it).</summary>
    public static ValueParser<string> String { get; } = new("a string", (string text, out string value) =>
    {
        value = text;
        return !text.Contains('\0', StringComparison.Ordinal);
    }, text => ConfigFormat.Quote(text.Replace("\0", "", StringComparison.Ordinal)));

    /// <summary><c>true</c> or <c>false</c>, ignoring case.</summary>
    public static ValueParser<bool> Boolean { get; } = new("true or false", bool.TryParse);

    /// <summary>Exactly one character.</summary>
    public static ValueParser<char> Char { get; } = new("a single character", (string text, out char value) =>
    {
        value = text.Length == 1 ? text[0] : default;
        return text.Length == 1;
    });

    /// <summary>An integer from -128 to 127.</summary>
    public static ValueParser<sbyte> SByte { get; } = Number<sbyte>("an integer between -128 and 127", Integer);

    /// <summary>An integer from 0 to 255.</summary>
    public static ValueParser<byte> Byte { get; } = Number<byte>("an integer between 0 and 255", Integer);

    /// <summary>An integer from -32768 to 32767.</summary>
    public static ValueParser<short> Int16 { get; } = Number<short>("an integer between -32768 and 32767", Integer);

    /// <summary>An integer from 0 to 65535.</summary>
    public static ValueParser<ushort> UInt16 { get; } = Number<ushort>("an integer between 0 and 65535", Integer);

    /// <summary>A 32-bit integer.</summary>
    public static ValueParser<int> Int32 { get; } = Number<int>("an integer", Integer);

    /// <summary>A non-negative 32-bit integer.</summary>
    public static ValueParser<uint> UInt32 { get; } = Number<uint>("a non-negative integer", Integer);

    /// <summary>A 64-bit integer.</summary>
    public static ValueParser<long> Int64 { get; } = Number<long>("an integer", Integer);

    /// <summary>A non-negative 64-bit integer.</summary>
    public static ValueParser<ulong> UInt64 { get; } = Number<ulong>("a non-negative integer", Integer);

    /// <summary>A finite single precision number.</summary>
    public static ValueParser<float> Single { get; } = Number<float>("a number", Float, float.IsFinite);

    /// <summary>A finite double precision number.</summary>
    public static ValueParser<double> Double { get; } = Number<double>("a number", Float, double.IsFinite);

    /// <summary>A decimal number.</summary>
    public static ValueParser<decimal> Decimal { get; } = Number<decimal>("a number", Float);

    /// <summary>An enum given by member name, ignoring case. The members are listed by generated code, not reflected.</summary>
    /// <remarks>
    /// Names are written in lower case (<c>adamw</c>, <c>imagefolder</c>) and matched ignoring case, '-' and '_', so
    /// <c>AdamW</c>, <c>mean-patch</c> and <c>mean_patch</c> all name their member.
    /// </remarks>
    public static ValueParser<T> Enum<T>(params (string Name, T Value)[] members)
        where T : struct, Enum
    {
        static string Key(string name) => name.Trim().Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();
        var names = members.Select(member => member.Name.ToLowerInvariant()).ToArray();
        var expectation = "one of " + string.Join(", ", names);
        return new ValueParser<T>(expectation, (string text, out T value) =>
        {
            foreach (var member in members)
            {
                if (Key(member.Name) == Key(text))
                {
                    value = member.Value;
                    return true;
                }
            }

            value = default;
            return false;
        }, text => DidYouMean.Suggest(text.Trim(), names));
    }

    /// <remarks>
    /// NaN and infinities are refused (no option means them); a decimal comma gets the suggestion of a point.
    /// </remarks>
    private static ValueParser<T> Number<T>(string expectation, NumberStyles styles, Func<T, bool>? accept = null)
        where T : INumber<T> =>
        new(expectation, (string text, out T value) => T.TryParse(text, styles, CultureInfo.InvariantCulture, out value!) && (accept?.Invoke(value) ?? true),
            text => text.Count(c => c == ',') == 1 && T.TryParse(text.Replace(',', '.'), styles, CultureInfo.InvariantCulture, out _)
                ? text.Replace(',', '.')
                : null);
}
