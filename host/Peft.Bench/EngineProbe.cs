using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Bench;

/// <summary>Timings of libtorch work driven from .NET through TorchSharp.</summary>
public static class EngineProbe
{
    /// <param name="Flops">Work of one call (a multiply-add counts as 2 FLOPs).</param>
    public sealed record Timing(string Name, double Seconds, double Flops, int Iterations)
    {
        public double Gflops => Flops * Iterations / Seconds / 1e9;
        public double MicrosPerCall => Seconds / Iterations * 1e6;
    }

    /// <summary>A (m×k)·(k×n) float32 matmul, best of <paramref name="rounds"/>.</summary>
    public static Timing Matmul(long m, long k, long n, int iters, int rounds = 3)
    {
        using var a = randn(m, k);
        using var b = randn(k, n);
        using var _ = no_grad();
        return new($"matmul {m}x{k} * {k}x{n}", Best(rounds, 2, iters, () => a.matmul(b).Dispose()), 2.0 * m * k * n, iters);
    }

    /// <summary>linear((batch, tokens, in) → out) with bias.</summary>
    public static Timing Linear(long batch, long tokens, long inFeatures, long outFeatures, int iters, int rounds = 3)
    {
        using var x = randn(batch, tokens, inFeatures);
        using var w = randn(outFeatures, inFeatures);
        using var bias = randn(outFeatures);
        using var _ = no_grad();
        return new($"linear {batch}x{tokens}x{inFeatures} -> {outFeatures}",
            Best(rounds, 1, iters, () => nn.functional.linear(x, w, bias).Dispose()), 2.0 * batch * tokens * inFeatures * outFeatures, iters);
    }

    /// <summary>A one-element add: the per-call cost of an operator through TorchSharp (binding plus libtorch's dispatch).</summary>
    public static Timing TinyOp(int iters, int rounds = 3)
    {
        using var a = ones(1);
        using var b = ones(1);
        return new("add 1 + 1 (per-call cost)", Best(rounds, 1000, iters, () => a.add(b).Dispose()), 1, iters);
    }

    private static double Best(int rounds, int warmup, int iters, Action body)
    {
        var best = double.MaxValue;
        for (var r = 0; r < rounds; r++)
        {
            for (var k = 0; k < warmup; k++) body();
            var clock = Stopwatch.StartNew();
            for (var k = 0; k < iters; k++) body();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return best;
    }
}
