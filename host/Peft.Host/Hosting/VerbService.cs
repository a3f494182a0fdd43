using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Peft.Configuration;
using Peft.Host.Verbs;
using Serilog;

namespace Peft.Host.Hosting;

/// <summary>The exit code a verb's run ends with, read by <see cref="PeftHost.Run{TVerb}"/> once the host has stopped.</summary>
public sealed class VerbOutcome(string verbName)
{
    public string VerbName { get; } = verbName;
    public int ExitCode { get; set; } = ExitCodes.Failure;
}

/// <summary>
/// Runs one verb as the host's work: engine settings first, then the verb with the host's stopping token, then stops
/// the application. Cancellation by the host (Ctrl+C, SIGTERM) maps to exit 130, a failure to 1 with its message.
/// </summary>
public sealed class VerbService<TVerb>(TVerb verb, IConfiguration configuration, VerbOutcome outcome, IHostApplicationLifetime lifetime)
    : BackgroundService where TVerb : IVerb
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the host's start-up path: StartAsync returns at once and Ctrl+C reaches the token while the verb runs.
        await Task.Yield();
        try
        {
            PeftHost.ApplyEngineSettings(configuration);
            outcome.ExitCode = await verb.RunAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            Log.Warning("peft {Verb}: interrupted", outcome.VerbName);
            outcome.ExitCode = ExitCodes.Interrupted;
        }
        catch (ConfigurationException e)
        {
            // Settings that only the data, the files or the run directory show to be wrong (Data:Classes beyond the
            // dataset's classes, a Data:Root that does not exist, a run directory holding another configuration's run).
            outcome.ExitCode = PeftHost.ReportInvalid(outcome.VerbName, e.Issues);
        }
        catch (Exception e)
        {
            Log.Error(e, "peft {Verb} failed: {Message}", outcome.VerbName, e.Message);
            outcome.ExitCode = ExitCodes.Failure;
        }
        finally
        {
            lifetime.StopApplication();
        }
    }
}
