using Peft.Training;
using Serilog;

namespace Peft.Host.Hosting;

/// <summary>
/// Shows training progress: one live line (loss, accuracy, images/s, ETA) on a terminal, and a log
/// line per epoch and per evaluation either way (so redirected output and log files get them too).
/// </summary>
public sealed class ProgressDisplay(ILogger log, string label) : IProgress<TrainingProgress>, IDisposable
{
    private readonly bool _live = !Console.IsOutputRedirected;
    private DateTime _lastDraw = DateTime.MinValue;
    private bool _drawn;

    public void Report(TrainingProgress p)
    {
        if (p.Phase == "train")
        {
            if (_live && (DateTime.UtcNow - _lastDraw).TotalMilliseconds > 200)
            {
                _lastDraw = DateTime.UtcNow;
                var width = 20;
                var filled = p.StepsPerEpoch == 0 ? 0 : width * p.Step / p.StepsPerEpoch;
                var bar = new string('#', filled) + new string('-', width - filled);
                Draw($"{label} epoch {p.Epoch + 1}/{p.Epochs} [{bar}] loss {p.Loss:F4} acc {p.Accuracy:P1} " +
                     $"{p.ImagesPerSecond:F0} img/s lr {p.Lr:G3} ETA {p.Eta:hh\\:mm\\:ss}");
            }
            if (p.Step == p.StepsPerEpoch)
            {
                Clear();
                log.Information("{Label} epoch {Epoch}/{Epochs}: loss {Loss:F4}, train accuracy {Accuracy:P2}, {Rate:F0} images/s, ETA {Eta:hh\\:mm\\:ss}",
                    label, p.Epoch + 1, p.Epochs, p.Loss, p.Accuracy, p.ImagesPerSecond, p.Eta);
            }
        }
        else if (p.Step == p.StepsPerEpoch)
        {
            Clear();
            log.Information("{Label} {Split}: top-1 {Accuracy:P2} on {Count} images ({Rate:F0} images/s)", label, p.Phase, p.Accuracy, p.Step,
                p.ImagesPerSecond);
        }
        else if (_live && (DateTime.UtcNow - _lastDraw).TotalMilliseconds > 200)
        {
            _lastDraw = DateTime.UtcNow;
            Draw($"{label} evaluating {p.Phase}: {p.Step}/{p.StepsPerEpoch} top-1 {p.Accuracy:P1}");
        }
    }

    private void Draw(string line)
    {
        var width = Math.Max(20, SafeWindowWidth() - 1);
        Console.Write("\r" + (line.Length > width ? line[..width] : line.PadRight(width)));
        _drawn = true;
    }

    private void Clear()
    {
        if (!_drawn) return;
        Console.Write("\r" + new string(' ', Math.Max(20, SafeWindowWidth() - 1)) + "\r");
        _drawn = false;
    }

    private static int SafeWindowWidth()
    {
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 120; }
        catch (IOException) { return 120; }
    }

    public void Dispose() => Clear();
}
