using System.Diagnostics;

namespace Peft.Host.Tests;

/// <summary>Runs the built `peft` executable as a child process, as a user would.</summary>
public static class PeftProcess
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr);

    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Peft.sln"))) return dir.FullName;
            throw new InvalidOperationException("Peft.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Starts `peft` without waiting (output discarded).</summary>
    public static Process Start(string workingDirectory, params string[] args)
    {
        var start = Info(workingDirectory, args);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    public static Result Run(string workingDirectory, params string[] args)
    {
        using var process = Process.Start(Info(workingDirectory, args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("peft " + string.Join(' ', args) + " did not finish in 5 minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    private static ProcessStartInfo Info(string workingDirectory, string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "peft.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        return start;
    }
}
