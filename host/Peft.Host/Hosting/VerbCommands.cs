using System.CommandLine;
using Peft.Configuration;
using Peft.Host.Verbs;

namespace Peft.Host.Hosting;

/// <summary>
/// Command-line verbs that run through <see cref="PeftHost.Run{TVerb}"/>: `NAME [--config FILE] [Key=Value ...]`. Shared by
/// `peft` and `peft-bench`, which passes its own option sections.
/// </summary>
public static class VerbCommands
{
    public static Command Create<TVerb>(string name, string description, bool needsMethod = false,
        IReadOnlyList<HyperParametersInfo>? extraOptions = null) where TVerb : class, IVerb =>
        Build<TVerb>(name, description, needsMethod, null, null, extraOptions);

    /// <summary>A verb with a boolean flag that stands for a configuration override (e.g. --describe for Methods:Describe=true).</summary>
    public static Command WithFlag<TVerb>(string name, string description, string flag, string flagDescription, string flagOverride,
        bool needsMethod = false, IReadOnlyList<HyperParametersInfo>? extraOptions = null) where TVerb : class, IVerb
    {
        var option = new Option<bool>(flag) { Description = flagDescription };
        return Build<TVerb>(name, description, needsMethod, option, parse => parse.GetValue(option) ? flagOverride : null, extraOptions);
    }

    /// <summary>A verb taking one optional folder before its overrides (`peft runs [DIR]`), bound to <paramref name="key"/>.</summary>
    public static Command WithFolder<TVerb>(string name, string description, string argument, string key) where TVerb : class, IVerb
    {
        var config = new Option<FileInfo?>("--config") { Description = "A JSON configuration file layered over appsettings.json." };
        var folder = new Argument<string?>(argument) { Description = $"The folder ({key}).", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command(name, description) { config, folder };
        command.SetAction(parse => PeftHost.Run<TVerb>(name, parse.GetValue(config),
            parse.GetValue(folder) is { Length: > 0 } dir ? [$"{key}={dir}"] : []));
        return command;
    }

    private static Command Build<TVerb>(string name, string description, bool needsMethod, Option? extra, Func<ParseResult, string?>? extraOverride,
        IReadOnlyList<HyperParametersInfo>? extraOptions) where TVerb : class, IVerb
    {
        var config = new Option<FileInfo?>("--config") { Description = "A JSON configuration file layered over appsettings.json." };
        var overrides = new Argument<string[]>("overrides")
        {
            Description = "Configuration overrides as Key=Value, with ':' between sections (e.g. Run:Threads=2).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var command = new Command(name, description) { config, overrides };
        if (extra is not null) command.Options.Add(extra);
        command.SetAction(parse =>
        {
            var all = (parse.GetValue(overrides) ?? []).ToList();
            if (extraOverride?.Invoke(parse) is { } more) all.Add(more);
            return PeftHost.Run<TVerb>(name, parse.GetValue(config), all, needsMethod, extraOptions);
        });
        return command;
    }
}
