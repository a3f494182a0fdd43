namespace Peft.Host.Verbs;

/// <summary>One `peft` verb; returns the process exit code (see ExitCodes).</summary>
public interface IVerb
{
    Task<int> RunAsync(CancellationToken cancellationToken);
}
