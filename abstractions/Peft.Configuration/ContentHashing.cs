using System.Collections;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Peft.Configuration;

/// <summary>
/// Writes values as canonical JSON text: no whitespace, properties in the order written (generated code writes
/// them sorted by name), invariant numbers with round-trip floating point, enums by name.
/// </summary>
public sealed class CanonicalWriter
{
    private readonly StringBuilder _text = new();
    private bool _needsComma;

    /// <summary>Writes one property of the current object.</summary>
    public void Write(string name, object? value)
    {
        Separate();
        WriteString(name);
        _text.Append(':');
        _needsComma = false;
        WriteValue(value);
    }

    /// <summary>Writes a whole record as an object.</summary>
    public void WriteObject(IHyperParameters record)
    {
        _text.Append('{');
        _needsComma = false;
        record.WriteCanonical(this);
        _text.Append('}');
        _needsComma = true;
    }

    /// <inheritdoc />
    public override string ToString() => _text.ToString();

    private void WriteValue(object? value)
    {
        switch (value)
        {
            case null:
                _text.Append("null");
                break;
            case IHyperParameters record:
                WriteObject(record);
                return;
            case string text:
                WriteString(text);
                break;
            case char character:
                WriteString(character.ToString());
                break;
            case bool flag:
                _text.Append(flag ? "true" : "false");
                break;
            case Enum member:
                WriteString(member.ToString());
                break;
            case double number:
                _text.Append(number.ToString("R", CultureInfo.InvariantCulture));
                break;
            case float number:
                _text.Append(number.ToString("R", CultureInfo.InvariantCulture));
                break;
            case IFormattable number:
                _text.Append(number.ToString(null, CultureInfo.InvariantCulture));
                break;
            case IEnumerable items:
                WriteArray(items);
                return;
            default:
                throw new NotSupportedException($"Cannot write a {value.GetType()} canonically.");
        }

        _needsComma = true;
    }

    private void WriteArray(IEnumerable items)
    {
        _text.Append('[');
        _needsComma = false;
        foreach (var item in items)
        {
            Separate();
            WriteValue(item);
        }

        _text.Append(']');
        _needsComma = true;
    }

    private void Separate()
    {
        if (_needsComma)
        {
            _text.Append(',');
        }
    }

    private void WriteString(string text)
    {
        _text.Append('"');
        foreach (var c in text)
        {
            _ = c switch
            {
                '"' => _text.Append("\\\""),
                '\\' => _text.Append("\\\\"),
                < ' ' => _text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)),
                _ => _text.Append(c),
            };
        }

        _text.Append('"');
    }
}

/// <summary>Stable content hashes of hyperparameter records: the same values give the same hash in every process.</summary>
public static class ContentHashing
{
    /// <summary>The canonical JSON text of <paramref name="record"/>.</summary>
    public static string CanonicalText(IHyperParameters record)
    {
        var writer = new CanonicalWriter();
        writer.WriteObject(record);
        return writer.ToString();
    }

    /// <summary>The first 16 lowercase hex digits of the SHA-256 of the canonical text.</summary>
    public static string Compute(IHyperParameters record) => HashText(CanonicalText(record));

    /// <summary>The first 16 lowercase hex digits of the SHA-256 of <paramref name="text"/> in UTF-8.</summary>
    public static string HashText(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
}
