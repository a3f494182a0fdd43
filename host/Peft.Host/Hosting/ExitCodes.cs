namespace Peft.Host.Hosting;

/// <summary>The process exit codes of every verb.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int InvalidConfiguration = 2;
    public const int Interrupted = 130;
}
