using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Peft.Host.Plugins;
using Peft.Configuration;
using Peft.Host.Verbs;
using Peft.Engine;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Host.Hosting;

/// <summary>Builds the generic host for one verb, runs it, and maps its outcome to an exit code.</summary>
public static class PeftHost
{
    /// <summary>
    /// Layers appsettings.json, the optional config file, PEFT_Section__Key environment variables and Key=Value overrides;
    /// a later layer replaces what it names (<see cref="LayeredConfiguration"/>).
    /// </summary>
    public static IConfigurationRoot BuildConfiguration(FileInfo? configFile, IReadOnlyList<string> overrides)
    {
        var builder = new ConfigurationBuilder().SetBasePath(AppContext.BaseDirectory);
        var appsettings = Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        if (File.Exists(appsettings))
        {
            JsonConfigurationFile.Check(appsettings);
            builder.AddJsonFile(appsettings, optional: false);
        }
        if (configFile is not null)
        {
            if (!configFile.Exists) throw new ConfigurationFileException($"configuration file not found: {configFile.FullName}");
            JsonConfigurationFile.Check(configFile.FullName);
            builder.AddJsonFile(configFile.FullName, optional: false);
        }
        builder.AddInMemoryCollection(EnvironmentOverrides());
        builder.AddInMemoryCollection(ParseOverrides(overrides));
        return LayeredConfiguration.Merge(builder.Build());
    }

    /// <summary>
    /// PEFT_Section__Key variables as Section:Key. Variables without a section (PEFT_HOST_ALLOCATOR, read by the engine) are
    /// not configuration.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, string?>> EnvironmentOverrides() =>
        Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => (Name: (string)e.Key, Value: (string?)e.Value))
            .Where(e => e.Name.StartsWith("PEFT_", StringComparison.OrdinalIgnoreCase) && e.Name.Contains("__", StringComparison.Ordinal))
            .Select(e => new KeyValuePair<string, string?>(e.Name["PEFT_".Length..].Replace("__", ":", StringComparison.Ordinal), e.Value));

    /// <summary>Key=Value pairs; a key given twice takes its last value, as later layers win.</summary>
    public static IEnumerable<KeyValuePair<string, string?>> ParseOverrides(IReadOnlyList<string> overrides)
    {
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var item in overrides)
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new ConfigurationFileException($"override '{item}' is not of the form Key=Value (e.g. Run:Threads=2)");
            values[item[..eq].Trim().Replace("__", ":", StringComparison.Ordinal)] = item[(eq + 1)..];
        }
        return values;
    }

    /// <summary>Assemblies whose [PeftMethod] factories are built in (the baselines).</summary>
    public static IReadOnlyList<System.Reflection.Assembly> BuiltInMethodAssemblies { get; } =
        [typeof(Peft.Training.Baselines.BaselineFactory).Assembly];

    /// <summary>
    /// The host's own plugins/ folder (or, when running from a build tree without one, such as a test project's output,
    /// the checkout's artifacts/plugins), then the folders of Plugins:Folders that exist (the others are configuration
    /// issues, reported with every other problem).
    /// </summary>
    public static IEnumerable<string> PluginFolders(IConfiguration? configuration)
    {
        var own = Path.Combine(AppContext.BaseDirectory, "plugins");
        if (Directory.Exists(own)) yield return own;
        else
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var built = Path.Combine(dir.FullName, "artifacts", "plugins");
                if (Directory.Exists(built))
                {
                    yield return built;
                    break;
                }
            }
        if (configuration is null) yield break;
        foreach (var folder in HyperParameters.Load<PluginOptions>(configuration).Value.Folders.Where(Directory.Exists))
            yield return Path.GetFullPath(folder);
    }

    public static MethodCatalog Methods(IConfiguration? configuration) =>
        MethodCatalog.Discover(BuiltInMethodAssemblies, PluginFolders(configuration));

    /// <summary>The options the host validates: its own and every known method's.</summary>
    public static OptionsCatalog Catalog(IConfiguration? configuration = null) => new(Methods(configuration), []);

    /// <summary>
    /// Runs one verb as a generic host: configuration bound and validated first (exit 2 listing every problem), then
    /// a host with Serilog (<c>UseSerilog</c>) and the console lifetime, whose hosted <see cref="VerbService{TVerb}"/>
    /// runs the verb and stops the application. Ctrl+C stops the host, which cancels the verb's token: it stops at
    /// its next safe point (a batch boundary, after a checkpoint) and the process exits with 130.
    /// </summary>
    /// <param name="extraOptions">Option sections of the calling executable beyond the host's (the benchmarks').</param>
    public static int Run<TVerb>(string verbName, FileInfo? configFile, IReadOnlyList<string> overrides, bool needsMethod = false,
        IReadOnlyList<HyperParametersInfo>? extraOptions = null)
        where TVerb : class, IVerb
    {
        IConfigurationRoot configuration;
        try
        {
            configuration = BuildConfiguration(configFile, overrides);
        }
        catch (Exception e) when (e is ConfigurationFileException or InvalidDataException or FormatException)
        {
            Console.Error.WriteLine($"peft {verbName}: invalid configuration: {e.Message}");
            return ExitCodes.InvalidConfiguration;
        }

        var methods = Methods(configuration);
        var catalog = new OptionsCatalog(methods, extraOptions ?? []);
        // Every problem at once, with its configuration path; no stack trace.
        IReadOnlyList<ConfigIssue> issues;
        try
        {
            issues = catalog.Validate(configuration, needsMethod, methods);
            if (issues.Count == 0) issues = DeviceIssues(configuration);
        }
        catch (TorchLoadException e)
        {
            Console.Error.WriteLine($"peft {verbName}: {e.Message}");
            return ExitCodes.Failure;
        }
        if (issues.Count > 0) return ReportInvalid(verbName, issues);

        // Tables are read in logs and pipes too: do not wrap them at the 80 columns a redirected console defaults to.
        if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = Math.Max(Spectre.Console.AnsiConsole.Profile.Width, 200);
        try
        {
            // The console shows messages; a failure's stack trace goes to the run's peft.log, not to the user's terminal.
            Log.Logger = new LoggerConfiguration()
                .ReadFrom.Configuration(configuration)
                .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}", standardErrorFromLevel: Serilog.Events.LogEventLevel.Warning)
                .CreateLogger();
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or InvalidCastException
                                      or System.Reflection.TargetInvocationException)
        {
            return ReportInvalid(verbName, [ConfigIssue.Custom("Serilog", $"the Serilog section cannot be applied: {e.Message}")]);
        }
        try
        {
            var outcome = new VerbOutcome(verbName);
            using var host = new HostBuilder()
                .ConfigureAppConfiguration(builder => builder.AddConfiguration(configuration))
                .UseSerilog()
                .UseConsoleLifetime(options => options.SuppressStatusMessages = true)
                .ConfigureServices(services =>
                {
                    services.AddSingleton<IConfiguration>(configuration);
                    services.AddSingleton(catalog);
                    services.AddSingleton(methods);
                    services.AddSingleton<TVerb>();
                    services.AddSingleton(outcome);
                    services.AddHostedService<VerbService<TVerb>>();
                    // A stopping verb writes its checkpoint before it returns: the host waits for it however long that takes.
                    services.Configure<HostOptions>(options => options.ShutdownTimeout = Timeout.InfiniteTimeSpan);
                })
                .Build();
            host.Run(); // runs the verb, then stops and disposes the host
            return outcome.ExitCode;
        }
        catch (Exception e)
        {
            Log.Error(e, "peft {Verb} failed: {Message}", verbName, e.Message);
            return ExitCodes.Failure;
        }
        finally
        {
            Log.CloseAndFlush();
        }
    }

    /// <summary>Exit 2 listing every problem with its configuration path, without a stack trace.</summary>
    public static int ReportInvalid(string verbName, IReadOnlyList<ConfigIssue> issues)
    {
        Console.Error.WriteLine($"peft {verbName}: invalid configuration ({issues.Count} problem{(issues.Count == 1 ? "" : "s")}):");
        foreach (var issue in issues) Console.Error.WriteLine($"  - {issue.Message}");
        return ExitCodes.InvalidConfiguration;
    }

    /// <summary>A CUDA Run:Device that this build or machine cannot give is a configuration error, never a silent CPU run.</summary>
    private static IReadOnlyList<ConfigIssue> DeviceIssues(IConfiguration configuration)
    {
        var device = HyperParameters.Load<Peft.Abstractions.Options.RunOptions>(configuration).GetValueOrThrow().Device;
        if (!device.StartsWith("cuda", StringComparison.Ordinal)) return [];
        var (_, problem) = TorchEngine.ResolveDevice(device);
        return problem is null ? [] : [ConfigIssue.Custom("Run:Device", $"Run:Device is '{device}', but {problem}", device)];
    }

    /// <summary>Loads the engine (its real error if it cannot be), then Run:Threads (0 = all cores) applies to libtorch before any verb runs.</summary>
    internal static void ApplyEngineSettings(IConfiguration configuration)
    {
        TorchEngine.EnsureLoaded();
        var run = Peft.Configuration.HyperParameters.Load<Peft.Abstractions.Options.RunOptions>(configuration).GetValueOrThrow();
        torch.set_num_threads(run.Threads > 0 ? run.Threads : Environment.ProcessorCount);
    }
}

/// <summary>A configuration source that cannot be read (missing file, malformed override).</summary>
public sealed class ConfigurationFileException(string message) : Exception(message);
