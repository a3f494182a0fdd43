using System.Diagnostics;

namespace Peft.Bench;

/// <summary>
/// Runs a measurement in a process of its own (peak resident memory is per process, and a crash loses one run):
/// `peft-bench VERB Key=Value ...` (this program), `peft VERB ...` (the product, beside it), or another program (the
/// PyTorch reference).
/// Output goes to a log file; the exit code and wall time come back.
/// </summary>
public static class ChildProcess
{
    public sealed record Outcome(int ExitCode, TimeSpan Wall, string LogPath);

    /// <summary>A program of this folder as a command line: `dotnet NAME.dll` (portable to a machine without the apphost).</summary>
    private static (string FileName, IReadOnlyList<string> Prefix) Program(string assembly) =>
        (Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p).Equals("dotnet", StringComparison.OrdinalIgnoreCase) ? p : "dotnet",
            [Path.Combine(AppContext.BaseDirectory, assembly)]);

    /// <summary>`peft-bench VERB ...`: another measurement of this program.</summary>
    public static Task<Outcome> Bench(string logPath, IEnumerable<string> args, CancellationToken cancellationToken)
    {
        var (file, prefix) = Program(typeof(ChildProcess).Assembly.GetName().Name + ".dll");
        return Run(file, prefix.Concat(args), logPath, cancellationToken);
    }

    /// <summary>`peft VERB ...`: the product itself, as a user runs it.</summary>
    public static Task<Outcome> Peft(string logPath, IEnumerable<string> args, CancellationToken cancellationToken)
    {
        var (file, prefix) = Program("peft.dll");
        return Run(file, prefix.Concat(args), logPath, cancellationToken);
    }

    public static async Task<Outcome> Run(string fileName, IEnumerable<string> args, string logPath, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = Environment.CurrentDirectory,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        // Plain text in the log: no colour codes, no live progress redraws.
        start.Environment["NO_COLOR"] = "1";
        start.Environment["TERM"] = "dumb";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        await using var log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        await log.WriteLineAsync($"$ {fileName} {string.Join(' ', start.ArgumentList)}");
        var gate = new object();
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) log.WriteLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        process.WaitForExit(); // drains the output handlers
        return new Outcome(process.ExitCode, clock.Elapsed, logPath);
    }

    /// <summary>The last lines of a log, for an error message.</summary>
    public static string Tail(string logPath, int lines = 8) =>
        File.Exists(logPath) ? string.Join(Environment.NewLine, File.ReadLines(logPath).TakeLast(lines)) : "(no log)";
}
