using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Host.Plugins;

namespace Peft.Host.Hosting;

/// <summary>
/// Every options record the host knows: its own (run, backbone, data, trainer) and, through
/// <see cref="MethodOptions"/>, each method's. Binds and validates them all at once on start, and
/// assembles the JSON schema that appsettings.json references.
/// </summary>
public sealed class OptionsCatalog
{
    public const string SchemaFileName = "peft.schema.json";

    /// <summary>The host's own option records, in the order their sections appear in appsettings.json.</summary>
    public static readonly IReadOnlyList<HyperParametersInfo> HostOptions =
    [
        HyperParametersInfo.Of<RunOptions>(),
        HyperParametersInfo.Of<BackboneOptions>(),
        HyperParametersInfo.Of<DataOptions>(),
        HyperParametersInfo.Of<TrainerOptions>(),
        HyperParametersInfo.Of<PretrainOptions>(),
        HyperParametersInfo.Of<PluginOptions>(),
    ];

    /// <summary>Method name → its options record (bound from Method:Options when Method:Name selects it).</summary>
    public IReadOnlyDictionary<string, HyperParametersInfo> MethodOptions { get; }

    /// <summary>The host's records and those of the executable running it (the benchmarks add theirs).</summary>
    public IReadOnlyList<HyperParametersInfo> Sections { get; }

    private readonly MethodCatalog _methods;

    public OptionsCatalog(MethodCatalog methods, IReadOnlyList<HyperParametersInfo> extraSections)
    {
        _methods = methods;
        MethodOptions = methods.OptionsByMethod();
        Sections = [.. HostOptions, .. extraSections];
    }

    /// <summary>
    /// Sections that no options record binds, with the keys the verbs read from them: Serilog's own (checked by
    /// <see cref="LoggingIssues"/>), the JSON schema reference, and the verbs' small settings.
    /// </summary>
    private static readonly IReadOnlyDictionary<string, string[]> LooseSections = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase)
    {
        ["$schema"] = [], ["Serilog"] = [], ["Method"] = ["Name", "Options"], ["Eval"] = ["Adapter"], ["Methods"] = ["Describe"],
        ["Runs"] = ["Dir"], ["Schema"] = ["Output"], ["Bench"] = ["Output"],
    };

    /// <summary>
    /// Binds and validates the host's records and, when one is named, the method's; returns every issue, including
    /// sections no verb reads (a misspelt Trainr:Epochs would otherwise be ignored) and rules across sections.
    /// </summary>
    /// <param name="plugins">The catalog the methods come from: a requested method that plugins claim but that cannot be used (two
    /// claim its name) is named with the reason, and an unknown one with the plugins that could not be loaded.</param>
    public IReadOnlyList<ConfigIssue> Validate(IConfiguration configuration, bool includeMethod, Plugins.MethodCatalog? plugins = null)
    {
        var issues = new List<ConfigIssue>();
        issues.AddRange(SectionIssues(configuration));
        foreach (var info in Sections)
            issues.AddRange(info.Load(configuration).Issues);
        issues.AddRange(CrossSectionIssues(configuration));
        issues.AddRange(LoggingIssues(configuration));
        if (includeMethod)
        {
            var name = configuration["Method:Name"];
            if (string.IsNullOrWhiteSpace(name))
                issues.Add(ConfigIssue.Missing("Method:Name"));
            else if (plugins?.Unavailable.GetValueOrDefault(name) is { } why)
                issues.Add(ConfigIssue.Custom("Method:Name", $"Method:Name '{name}' cannot be used: {why}", name));
            else if (!MethodOptions.TryGetValue(name, out var info))
            {
                var suggestion = DidYouMean.Suggest(name, MethodOptions.Keys);
                issues.Add(ConfigIssue.Custom("Method:Name",
                    $"Method:Name '{name}' is not a known method" + (suggestion is null ? "" : $"; did you mean {suggestion}?") +
                    $" (known: {string.Join(", ", MethodOptions.Keys.Order(StringComparer.Ordinal))}). {WhereMethodsComeFrom()}", name));
            }
            else
                issues.AddRange(info.Load(configuration, "Method:Options").Issues);
        }
        return issues;
    }

    /// <summary>Where plugins were searched, and how many could not be used: what a user looking for a method needs next.</summary>
    private string WhereMethodsComeFrom()
    {
        var searched = _methods.SearchedFolders.Count == 0
            ? "No plugin folder was searched"
            : $"Plugins were searched in {string.Join(", ", _methods.SearchedFolders)}";
        var problems = _methods.Problems.Count == 0 ? "" :
            $"; {_methods.Problems.Count} plugin{(_methods.Problems.Count == 1 ? "" : "s")} could not be used ({string.Join("; ", _methods.Problems.Select(p => p.Message))})";
        return searched + problems + "; name other folders in Plugins:Folders";
    }

    /// <summary>Top-level sections that nothing reads, and keys of the loose sections that their verb does not read.</summary>
    private IEnumerable<ConfigIssue> SectionIssues(IConfiguration configuration)
    {
        var known = Sections.Select(s => s.SectionName!).Concat(LooseSections.Keys).ToList();
        foreach (var section in configuration.GetChildren())
        {
            if (!known.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
            {
                var suggestion = DidYouMean.Suggest(section.Key, known.Where(k => k != "$schema"));
                yield return ConfigIssue.Custom(section.Key, $"{section.Key} is not a known section" +
                    (suggestion is null ? "" : $"; did you mean {suggestion}?") + $" (known: {string.Join(", ", known.Where(k => k != "$schema"))})");
            }
            else if (LooseSections.TryGetValue(section.Key, out var keys) && keys.Length > 0)
                foreach (var key in section.GetChildren().Where(k => !keys.Contains(k.Key, StringComparer.OrdinalIgnoreCase)))
                    yield return ConfigIssue.UnknownKey(ConfigPath.Combine(section.Key, key.Key), DidYouMean.Suggest(key.Key, keys));
        }
    }

    /// <summary>Data's per-channel statistics are one value per channel of the backbone's input (images are brought to its channels).</summary>
    private static IEnumerable<ConfigIssue> CrossSectionIssues(IConfiguration configuration)
    {
        var backbone = HyperParameters.Load<BackboneOptions>(configuration);
        var data = HyperParameters.Load<DataOptions>(configuration);
        if (backbone.Issues.Count > 0 || data.Issues.Count > 0) yield break; // reported with their own paths
        var channels = backbone.Value.Channels;
        foreach (var (name, values) in new[] { ("Mean", data.Value.Mean), ("Std", data.Value.Std) })
            if (values.Count != channels)
                yield return ConfigIssue.Custom($"Data:{name}",
                    $"Data:{name} has {values.Count} value{(values.Count == 1 ? "" : "s")} but Backbone:Channels is {channels}: give one per channel");
    }

    /// <summary>Serilog's levels (its own reader throws on a bad one, with no key named).</summary>
    private static IEnumerable<ConfigIssue> LoggingIssues(IConfiguration configuration)
    {
        var levels = Enum.GetNames<Serilog.Events.LogEventLevel>();
        var minimum = configuration.GetSection("Serilog:MinimumLevel");
        var settings = new List<IConfigurationSection>();
        if (minimum.Value is not null) settings.Add(minimum);
        settings.AddRange(minimum.GetChildren().Where(c => c.Key.Equals("Default", StringComparison.OrdinalIgnoreCase)));
        settings.AddRange(minimum.GetSection("Override").GetChildren());
        foreach (var setting in settings)
            if (!Enum.TryParse<Serilog.Events.LogEventLevel>(setting.Value, ignoreCase: true, out _) || int.TryParse(setting.Value, out _))
                yield return ConfigIssue.InvalidType(setting.Path, "one of " + string.Join(", ", levels), ConfigFormat.Quote(setting.Value ?? ""),
                    DidYouMean.Suggest(setting.Value ?? "", levels));
    }

    /// <summary>The JSON schema of the whole configuration file.</summary>
    public string JsonSchema()
    {
        var properties = new JsonObject
        {
            ["$schema"] = new JsonObject { ["type"] = "string" },
            ["Serilog"] = new JsonObject { ["type"] = "object", ["description"] = "Serilog settings (Serilog.Settings.Configuration)." },
            ["Schema"] = new JsonObject { ["type"] = "object", ["description"] = "Options of `peft schema` (Output: the file to write)." },
        };
        foreach (var info in Sections)
            properties[info.SectionName!] = JsonNode.Parse(info.JsonSchema);

        var names = MethodOptions.Keys.Order(StringComparer.Ordinal).ToList();
        var method = new JsonObject
        {
            ["type"] = "object",
            ["description"] = "The prompt method (or baseline) to train, and its options.",
            ["properties"] = new JsonObject
            {
                ["Name"] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray(names.Select(n => (JsonNode?)n).ToArray()) },
                ["Options"] = new JsonObject { ["type"] = "object" },
            },
            ["additionalProperties"] = false,
        };
        var conditions = new JsonArray();
        foreach (var name in names)
            conditions.Add(new JsonObject
            {
                ["if"] = new JsonObject { ["properties"] = new JsonObject { ["Name"] = new JsonObject { ["const"] = name } } },
                ["then"] = new JsonObject { ["properties"] = new JsonObject { ["Options"] = JsonNode.Parse(MethodOptions[name].JsonSchema) } },
            });
        if (conditions.Count > 0) method["allOf"] = conditions;
        properties["Method"] = method;

        var root = new JsonObject
        {
            ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
            ["title"] = "Peft configuration",
            ["description"] = "appsettings.json, --config files and overrides of the peft command. Generated by `peft schema`; do not edit.",
            ["type"] = "object",
            ["properties"] = properties,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }
}
