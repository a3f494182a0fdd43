using Peft.Torch;
using static Peft.Torch.torch;

namespace Peft.Host.Verbs;

/// <summary>Timings of the same work through the managed binding and in a C++ loop on libtorch.</summary>
public static class EngineProbe
{
    public sealed record Comparison(string Name, double BindingSeconds, double NativeSeconds, double Flops, int Iterations)
    {
        public double BindingGflops => Flops * Iterations / BindingSeconds / 1e9;
        public double NativeGflops => Flops * Iterations / NativeSeconds / 1e9;
        /// <summary>Binding throughput over native throughput (1.0 = no overhead).</summary>
        public double Ratio => NativeSeconds / BindingSeconds;
        public double BindingMicrosPerCall => BindingSeconds / Iterations * 1e6;
        public double NativeMicrosPerCall => NativeSeconds / Iterations * 1e6;
    }

    /// <summary>A (m×k)·(k×n) float32 matmul through the binding and in C++, best of <paramref name="rounds"/>.</summary>
    public static Comparison Matmul(long m, long k, long n, int iters, int rounds = 3)
    {
        using var a = randn(m, k);
        using var b = randn(k, n);
        using var _ = no_grad();
        var binding = Best(rounds, () => EngineDiagnostics.TimeLoop(2, iters, () => a.matmul(b).Dispose()));
        var native = Best(rounds, () => EngineDiagnostics.NativeMatmulSeconds(m, k, n, 2, iters));
        return new($"matmul {m}x{k} * {k}x{n}", binding, native, 2.0 * m * k * n, iters);
    }

    /// <summary>linear((batch, tokens, in) → out) with bias through the binding and in C++.</summary>
    public static Comparison Linear(long batch, long tokens, long inFeatures, long outFeatures, int iters, int rounds = 3)
    {
        using var x = randn(batch, tokens, inFeatures);
        using var w = randn(outFeatures, inFeatures);
        using var bias = randn(outFeatures);
        using var _ = no_grad();
        var binding = Best(rounds, () => EngineDiagnostics.TimeLoop(1, iters, () => nn.functional.linear(x, w, bias).Dispose()));
        var native = Best(rounds, () => EngineDiagnostics.NativeLinearSeconds(batch, tokens, inFeatures, outFeatures, 1, iters));
        return new($"linear {batch}x{tokens}x{inFeatures} -> {outFeatures}", binding, native, 2.0 * batch * tokens * inFeatures * outFeatures, iters);
    }

    /// <summary>A one-element add: the binding's per-call overhead over libtorch's own.</summary>
    public static Comparison TinyOp(int iters, int rounds = 3)
    {
        using var a = ones(1);
        using var b = ones(1);
        var binding = Best(rounds, () => EngineDiagnostics.TimeLoop(1000, iters, () => a.add(b).Dispose()));
        var native = Best(rounds, () => EngineDiagnostics.NativeTinyAddSeconds(1000, iters));
        return new("add 1 + 1 (per-call overhead)", binding, native, 1, iters);
    }

    private static double Best(int rounds, Func<double> run)
    {
        var best = double.MaxValue;
        for (var r = 0; r < rounds; r++) best = Math.Min(best, run());
        return best;
    }
}
