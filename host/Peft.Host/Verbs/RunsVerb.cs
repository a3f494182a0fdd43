using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Host.Hosting;
using Peft.Training;
using Spectre.Console;

namespace Peft.Host.Verbs;

/// <summary>
/// `peft runs [DIR]`: one table of the runs under Run:OutputDir (or DIR): method, its non-default options, trainable
/// parameters, test top-1 at the last epoch, epochs done, and status (finished, running, interrupted, failed).
/// </summary>
public sealed class RunsVerb(IConfiguration configuration) : IVerb
{
    public sealed record RunRow(string Name, string Method, string Options, long? Trainable, double? Test, int EpochsDone, int? Epochs, string Status);

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var root = configuration["Runs:Dir"] is { Length: > 0 } dir ? dir : HyperParameters.Load<RunOptions>(configuration).GetValueOrThrow().OutputDir;
        if (!Directory.Exists(root))
        {
            Console.WriteLine($"no runs: {Path.GetFullPath(root)} does not exist");
            return Task.FromResult(ExitCodes.Success);
        }
        var rows = Read(root);
        var table = new Table().AddColumns("Run", "Method", "Options", "Trainable", "Test top-1", "Epochs", "Status");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Name), Markup.Escape(r.Method), Markup.Escape(r.Options),
                r.Trainable?.ToString("N0", CultureInfo.InvariantCulture) ?? "-", r.Test?.ToString("P2", CultureInfo.InvariantCulture) ?? "-",
                r.Epochs is { } e ? $"{r.EpochsDone}/{e}" : r.EpochsDone.ToString(CultureInfo.InvariantCulture), Markup.Escape(r.Status));
        AnsiConsole.Write(table);
        Console.WriteLine($"{rows.Count} run{(rows.Count == 1 ? "" : "s")} under {Path.GetFullPath(root)}");
        return Task.FromResult(ExitCodes.Success);
    }

    /// <summary>Every run directory under <paramref name="root"/> (a folder with config.json), by name.</summary>
    public static List<RunRow> Read(string root) =>
        [.. Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal)
            .Where(d => File.Exists(Path.Combine(d, "config.json")))
            .Select(d => Row(new RunDirectory(d)))];

    private static RunRow Row(RunDirectory run)
    {
        var config = ReadConfig(run.ConfigFile);
        var method = config.GetValueOrDefault("Method:Name") ?? "?";
        // What was set beyond the defaults: the method's options and the recipe's overrides.
        var options = string.Join(", ", config
            .Where(kv => kv.Key.StartsWith("Method:Options:", StringComparison.Ordinal) || kv.Key.StartsWith("Trainer:", StringComparison.Ordinal))
            .Select(kv => $"{kv.Key[(kv.Key.IndexOf(':', kv.Key.StartsWith("Method:", StringComparison.Ordinal) ? 7 : 0) + 1)..]}={kv.Value}"));
        var results = run.ReadResults();
        var metrics = run.ReadMetrics();
        var epochs = results?.Epochs ?? (int.TryParse(config.GetValueOrDefault("Trainer:Epochs"), CultureInfo.InvariantCulture, out var e) ? e : null);
        return new RunRow(Path.GetFileName(run.Path), method, options.Length == 0 ? "(defaults)" : options, results?.TrainableParameters,
            results?.LastEpoch?.Test ?? metrics.LastOrDefault(m => m.Test is not null)?.Test, metrics.Count, epochs, Status(run, results));
    }

    private static string Status(RunDirectory run, TrainingResult? results)
    {
        var status = run.ReadStatus();
        return status?.Status switch
        {
            RunStatus.Finished => "finished",
            RunStatus.Failed => "failed" + (status.Message is { Length: > 0 } m ? $": {(m.Length > 60 ? m[..60] + "…" : m)}" : ""),
            RunStatus.Interrupted => "interrupted",
            // A "running" run whose process is gone was killed (SIGKILL, power loss); resuming continues it.
            RunStatus.Running => IsAlive(status.ProcessId) ? $"running (pid {status.ProcessId})" : "interrupted (killed)",
            _ => results is not null ? "finished" : run.HasCheckpoint ? "interrupted" : "unknown",
        };
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static Dictionary<string, string?> ReadConfig(string file)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string?>>(File.ReadAllText(file)) ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
