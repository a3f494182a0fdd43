using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Engine.Tests;

/// <summary>
/// A long training run with one dispose scope per step must hold resident memory flat: every step's
/// activations, gradient handles and optimizer temporaries are released deterministically, and
/// only the parameters and optimizer state persist.
/// </summary>
public class MemoryTests
{
    private static long ResidentBytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        var kb = long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return kb * 1024;
    }

    [Fact]
    public void Five_thousand_sgd_steps_in_dispose_scopes_keep_resident_memory_flat()
    {
        const int warmup = 500, steps = 5_000;
        TorchEngine.EnsureLoaded();   // the product's host-memory settings (glibc thresholds), as peft runs with them
        manual_seed(21);
        using var model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Dropout(0.1), nn.Linear(64, 10));
        using var optimizer = optim.SGD(model.parameters(), 0.05, momentum: 0.9, weight_decay: 1e-4);
        // A learnable target: the class is the argmax of a fixed random projection.
        using var teacher = randn(32, 10);

        // One intra-op thread: a 64×32 MLP gains nothing from more, and on a busy machine (CI runners, other jobs) an
        // OpenMP team waiting at every op's barrier for a descheduled thread turns seconds into minutes.
        var threads = get_num_threads();
        set_num_threads(1);
        double firstLoss = 0, lastLoss = 0;
        long afterWarmup = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            for (var step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                var x = randn(64, 32);
                var y = x.matmul(teacher).argmax(1);
                var loss = F.cross_entropy(model.forward(x), y);
                optimizer.zero_grad();
                loss.backward();
                nn.utils.clip_grad_norm_(model.parameters(), 5.0);
                optimizer.step();
                if (step < 100) firstLoss += loss.item<float>() / 100;
                if (step >= steps - 100) lastLoss += loss.item<float>() / 100;
                if (step == warmup) afterWarmup = ResidentBytes();
            }
        }
        finally
        {
            set_num_threads(threads);
        }
        var growth = ResidentBytes() - afterWarmup;

        Assert.True(growth < 32L << 20, $"resident memory grew by {growth / (1 << 20)} MiB over {steps - warmup} steps");
        Assert.True(lastLoss < 0.5 * firstLoss, $"training did not progress: loss {firstLoss:F3} → {lastLoss:F3}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}");
    }
}
