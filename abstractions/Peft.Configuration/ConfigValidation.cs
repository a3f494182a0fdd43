using System.Collections;
using System.Numerics;

namespace Peft.Configuration;

/// <summary>The rule checks generated <c>Validate</c> methods call, one per attribute.</summary>
public static class ConfigValidation
{
    /// <summary><see cref="RangeAttribute"/>: <c>X must be between 1 and 1000 (found 0)</c>.</summary>
    public static void Range<T>(List<ConfigIssue> issues, string path, T value, T minimum, T maximum)
        where T : INumber<T>
    {
        if (value < minimum || value > maximum || T.IsNaN(value))
        {
            issues.Add(ConfigIssue.OutOfRange(path, ConfigFormat.Value(minimum), ConfigFormat.Value(maximum), ConfigFormat.Value(value)));
        }
    }

    /// <summary><see cref="RangeAttribute"/> on a nullable number; <see langword="null"/> passes.</summary>
    public static void Range<T>(List<ConfigIssue> issues, string path, T? value, T minimum, T maximum)
        where T : struct, INumber<T>
    {
        if (value is { } number)
        {
            Range(issues, path, number, minimum, maximum);
        }
    }

    /// <summary>
    /// <see cref="RequiredAttribute"/>: <c>X is required</c> for <see langword="null"/>, an empty or blank string
    /// and an empty collection. Returns whether the value is present, so the property's other rules are only
    /// checked then.
    /// </summary>
    public static bool Required(List<ConfigIssue> issues, string path, object? value)
    {
        var missing = value switch
        {
            null => true,
            string text => string.IsNullOrWhiteSpace(text),
            ICollection collection => collection.Count == 0,
            _ => false,
        };
        if (missing)
        {
            issues.Add(ConfigIssue.Missing(path));
        }

        return !missing;
    }

    /// <summary><see cref="AllowedValuesAttribute"/>: <c>X must be one of 'a', 'b' (found 'c')</c>; <see langword="null"/> passes.</summary>
    public static void OneOf<T>(List<ConfigIssue> issues, string path, T? value, params ReadOnlySpan<T> allowed)
    {
        if (value is not null && !allowed.Contains(value))
        {
            issues.Add(ConfigIssue.NotAllowed(path, ConfigFormat.List(allowed), ConfigFormat.Value(value)));
        }
    }

    /// <summary><see cref="AllowedValuesAttribute"/> on a nullable value; <see langword="null"/> passes.</summary>
    public static void OneOf<T>(List<ConfigIssue> issues, string path, T? value, params ReadOnlySpan<T> allowed)
        where T : struct
    {
        if (value is { } present)
        {
            OneOf(issues, path, present, allowed);
        }
    }

    /// <summary>Validates each record of a nested collection at <c>path:index</c>.</summary>
    public static void Each(List<ConfigIssue> issues, string path, IEnumerable<IHyperParameters?>? items)
    {
        var index = 0;
        foreach (var item in items ?? [])
        {
            item?.Validate(ConfigPath.Combine(path, index), issues);
            index++;
        }
    }
}
