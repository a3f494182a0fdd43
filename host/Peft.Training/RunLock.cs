namespace Peft.Training;

/// <summary>
/// An exclusive hold on a run directory for one process: a lock on its <c>run.lock</c> file, which holds the holder's
/// process id. The lock is a POSIX record lock (FileStream.Lock, fcntl on Unix): the operating system releases it when
/// the process ends however it ends (SIGKILL included), and a process that cannot take it reads the holder's id from
/// the file. Re-entrant within a process (the host holds the directory while the trainer runs in it), counted.
/// </summary>
public sealed class RunLock : IDisposable
{
    public const string FileName = "run.lock";

    private static readonly Dictionary<string, (FileStream Stream, int Count)> Held = new(StringComparer.Ordinal);
    private readonly string _path;
    private bool _disposed;

    private RunLock(string path) => _path = path;

    /// <summary>Takes the run directory (created if needed) for this process, or throws naming the process that has it.</summary>
    /// <exception cref="RunInUseException">Another process holds the directory.</exception>
    public static RunLock Acquire(string runDirectory)
    {
        var path = Path.Combine(Path.GetFullPath(runDirectory), FileName);
        lock (Held)
        {
            if (Held.TryGetValue(path, out var held))
            {
                Held[path] = (held.Stream, held.Count + 1);
                return new RunLock(path);
            }
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // Shared opening: a second process must be able to open and read the file to learn who holds it. Closing any
            // other handle on this file would drop a POSIX lock, so this process opens it only here.
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            try
            {
                // .NET has no record locks on macOS: there the directory stays unguarded rather than unusable.
                if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows() || OperatingSystem.IsFreeBSD()) stream.Lock(0, 1);
            }
            catch (IOException)
            {
                stream.Dispose();
                throw new RunInUseException(runDirectory, Holder(path));
            }
            stream.SetLength(0);
            stream.Write(System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            stream.Flush(flushToDisk: true);
            Held[path] = (stream, 1);
            return new RunLock(path);
        }
    }

    private static int? Holder(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture,
                out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        lock (Held)
        {
            if (_disposed) return;
            _disposed = true;
            var (stream, count) = Held[_path];
            if (count > 1)
            {
                Held[_path] = (stream, count - 1);
                return;
            }
            Held.Remove(_path);
            stream.Dispose(); // closing the handle releases the lock
        }
    }
}

/// <summary>Another process is running in the run directory.</summary>
public sealed class RunInUseException(string runDirectory, int? processId) : Exception(
    $"run directory {runDirectory} is in use by another peft process ({(processId is { } pid ? $"PID {pid}" : "PID unknown")}); " +
    "wait for it to finish, stop it, or use another Run:Name")
{
    public int? ProcessId { get; } = processId;
}
