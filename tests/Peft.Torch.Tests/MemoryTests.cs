using System.Diagnostics;
using static Peft.Torch.torch;
using static Peft.Torch.torch.nn;

namespace Peft.Torch.Tests;

/// <summary>
/// A long training run with one dispose scope per step must hold resident memory flat: every step's
/// activations, gradients handles and optimizer temporaries are released deterministically, and
/// only the parameters and optimizer state persist.
/// </summary>
public class MemoryTests
{
    private static long ResidentBytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        var kb = long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        return kb * 1024;
    }

    [Fact]
    public void Five_thousand_training_steps_in_dispose_scopes_keep_resident_memory_flat()
    {
        const int warmup = 500, steps = 5_000;
        manual_seed(21);
        using var model = new Sequential(new Linear(32, 64), new GELU(), new Dropout(0.1), new Linear(64, 10));
        using var optimizer = new optim.SGD(model.parameters(), lr: 0.05, momentum: 0.9, weight_decay: 1e-4);
        // A learnable target: the class is the argmax of a fixed random projection.
        using var teacher = randn(32, 10);

        double firstLoss = 0, lastLoss = 0;
        long afterWarmup = 0;
        var clock = Stopwatch.StartNew();
        for (var step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var x = randn(64, 32);
            var y = x.matmul(teacher).argmax(1);
            var loss = functional.cross_entropy(model.call(x), y);
            loss.backward();
            utils.clip_grad_norm_(model.parameters(), 5.0);
            optimizer.step();
            optimizer.zero_grad();
            if (step < 100) firstLoss += loss.item() / 100;
            if (step >= steps - 100) lastLoss += loss.item() / 100;
            if (step == warmup) afterWarmup = ResidentBytes();
        }
        var growth = ResidentBytes() - afterWarmup;

        Assert.True(growth < 32L << 20, $"resident memory grew by {growth / (1 << 20)} MiB over {steps - warmup} steps");
        Assert.True(lastLoss < 0.5 * firstLoss, $"training did not progress: loss {firstLoss:F3} → {lastLoss:F3}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}");
    }
}
