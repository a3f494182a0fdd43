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

    private static long MinorFaults() =>
        // /proc/self/stat: the command name is in parentheses; minflt is the 10th field overall, the 8th after it.
        long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7],
            System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void A_freed_large_tensor_is_reused_without_fresh_page_faults()
    {
        // 48 MiB: above glibc's largest dynamic mmap threshold (32 MiB), so with libtorch's own allocator every such
        // tensor is a fresh mmap whose 12,288 pages the kernel faults in and zeroes again. This runs on a test worker
        // thread, where glibc's mmap/trim thresholds would not help either (a non-main arena gives each such block a
        // heap of its own and unmaps it on free).
        Assert.StartsWith("Peft caching allocator", EngineDiagnostics.HostAllocator());
        const long floats = 48L << 18;
        using (var first = ones(floats)) Assert.Equal(floats, first.sum().item<float>());
        var stats = EngineDiagnostics.HostAllocatorCounters();
        var before = MinorFaults();
        using (var second = ones(floats)) Assert.Equal(floats, second.sum().item<float>());
        var faults = MinorFaults() - before;
        Assert.True(faults < 2_000, $"{faults} page faults for a reused 48 MiB block (12,288 when it is mapped afresh)");
        var after = EngineDiagnostics.HostAllocatorCounters();
        Assert.Equal(stats.Hits + 1, after.Hits);
        Assert.Equal(stats.Misses, after.Misses);
    }

    [Fact]
    public void The_cache_never_holds_more_than_the_peak_of_live_bytes()
    {
        EngineDiagnostics.TrimHostCache();
        var start = EngineDiagnostics.HostAllocatorCounters();
        Assert.Equal(0, start.CachedBytes);
        Assert.Equal(start.LiveBytes, start.PeakLiveBytes);
        // Shapes that change every round (as evaluation after training does): each miss recycles cached blocks rather
        // than growing beside them, so lent + cached stays within what was ever lent at once.
        for (var round = 1; round <= 6; round++)
        {
            using var scope = NewDisposeScope();
            var blocks = Enumerable.Range(0, 4).Select(_ => empty([(long)round << 20])).ToList(); // 4 MiB each round more
            var now = EngineDiagnostics.HostAllocatorCounters();
            Assert.True(now.LiveBytes + now.CachedBytes <= now.PeakLiveBytes,
                $"round {round}: {now.LiveBytes} lent + {now.CachedBytes} cached > peak {now.PeakLiveBytes}");
        }
        var end = EngineDiagnostics.HostAllocatorCounters();
        Assert.True(end.CachedBytes >= 4L * 6 * (4 << 20) && end.CachedBytes <= end.PeakLiveBytes, $"cached {end.CachedBytes}, peak {end.PeakLiveBytes}");
        Assert.True(end.ReleasedBytes > start.ReleasedBytes, "no cached block was recycled for a new shape");
        EngineDiagnostics.TrimHostCache();
        Assert.Equal(0, EngineDiagnostics.HostAllocatorCounters().CachedBytes);
    }
}
