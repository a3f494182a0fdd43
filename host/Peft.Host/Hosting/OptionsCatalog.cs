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

    /// <summary>Binds and validates the host's records and, when one is named, the method's; returns every issue.</summary>
    public IReadOnlyList<ConfigIssue> Validate(IConfiguration configuration, bool includeMethod)
    {
        var issues = new List<ConfigIssue>();
        foreach (var info in Sections)
            issues.AddRange(info.Load(configuration).Issues);
        if (includeMethod)
        {
            var name = configuration["Method:Name"];
            if (string.IsNullOrWhiteSpace(name))
                issues.Add(ConfigIssue.Missing("Method:Name"));
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
