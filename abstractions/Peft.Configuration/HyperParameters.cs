using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Configuration;

namespace Peft.Configuration;

/// <summary>Binds and validates hyperparameter records in one step.</summary>
public static class HyperParameters
{
    /// <summary>
    /// Binds <typeparamref name="T"/> from <paramref name="configuration"/> at <paramref name="sectionPath"/>
    /// (default: the record's <see cref="HyperParametersAttribute.Section"/>, else the root) and validates it.
    /// Never throws for bad configuration: every problem is in <see cref="BindResult{T}.Issues"/>.
    /// </summary>
    public static BindResult<T> Load<T>(IConfiguration configuration, string? sectionPath = null)
        where T : class, IHyperParameters<T>
    {
        var path = sectionPath ?? T.SectionName ?? "";
        var issues = new List<ConfigIssue>();
        var value = T.Bind(Section(configuration, path), path, issues);
        value.Validate(path, issues);
        return new BindResult<T>(value, issues);
    }

    internal static IConfiguration Section(IConfiguration configuration, string path) =>
        path.Length == 0 ? configuration : configuration.GetSection(path);
}

/// <summary>
/// A non-generic handle on one hyperparameter record type, for hosts that only receive it from a plugin's
/// factory or as a <see cref="Type"/>. Create one with <see cref="Of{T}"/> or look it up in <see cref="HyperParametersRegistry"/>.
/// </summary>
public sealed class HyperParametersInfo
{
    private readonly Func<IConfiguration, string, BindResult<IHyperParameters>> _load;
    private readonly Func<IReadOnlyList<OptionDescription>> _describe;

    private HyperParametersInfo(
        Type type,
        string? sectionName,
        string jsonSchema,
        Func<IConfiguration, string, BindResult<IHyperParameters>> load,
        Func<IReadOnlyList<OptionDescription>> describe)
    {
        Type = type;
        SectionName = sectionName;
        JsonSchema = jsonSchema;
        _load = load;
        _describe = describe;
    }

    /// <summary>The record type.</summary>
    public Type Type { get; }

    /// <summary>Its default configuration path, if any.</summary>
    public string? SectionName { get; }

    /// <summary>Its JSON Schema fragment.</summary>
    public string JsonSchema { get; }

    /// <summary>The handle for <typeparamref name="T"/>.</summary>
    public static HyperParametersInfo Of<T>()
        where T : class, IHyperParameters<T> =>
        new(typeof(T), T.SectionName, T.JsonSchema, Load<T>, () => T.Describe());

    /// <summary>Its description table with the record's own defaults.</summary>
    public IReadOnlyList<OptionDescription> Describe() => _describe();

    /// <summary>Binds and validates the record, as <see cref="HyperParameters.Load{T}"/> does.</summary>
    public BindResult<IHyperParameters> Load(IConfiguration configuration, string? sectionPath = null) =>
        _load(configuration, sectionPath ?? SectionName ?? "");

    private static BindResult<IHyperParameters> Load<T>(IConfiguration configuration, string path)
        where T : class, IHyperParameters<T>
    {
        var result = HyperParameters.Load<T>(configuration, path);
        return new BindResult<IHyperParameters>(result.Value, result.Issues);
    }
}

/// <summary>
/// Every generated hyperparameter record registers itself here from a module initializer of its assembly,
/// so a host can enumerate the schemas of a loaded plugin or resolve a <see cref="Type"/> without reflection.
/// </summary>
public static class HyperParametersRegistry
{
    private static readonly ConcurrentDictionary<Type, HyperParametersInfo> Registered = new();

    /// <summary>Called by generated code; registering the same type again is harmless.</summary>
    public static void Register(HyperParametersInfo info) => Registered.TryAdd(info.Type, info);

    /// <summary>The handle for <paramref name="type"/>, or <see langword="null"/> if it is not a generated record.</summary>
    public static HyperParametersInfo? Find(Type type)
    {
        RuntimeHelpers.RunModuleConstructor(type.Module.ModuleHandle);
        return Registered.GetValueOrDefault(type);
    }

    /// <summary>Every record generated into <paramref name="assembly"/>, ordered by full type name.</summary>
    public static IReadOnlyList<HyperParametersInfo> In(Assembly assembly)
    {
        foreach (var module in assembly.GetModules())
        {
            RuntimeHelpers.RunModuleConstructor(module.ModuleHandle);
        }

        return [.. Registered.Values
            .Where(info => info.Type.Assembly == assembly)
            .OrderBy(info => info.Type.FullName, StringComparer.Ordinal)];
    }
}
