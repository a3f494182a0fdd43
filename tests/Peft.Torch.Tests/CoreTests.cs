using Peft.Torch;
using static Peft.Torch.torch;

namespace Peft.Torch.Tests;

public class CoreTests
{
    [Fact]
    public void Arithmetic_matches_hand_computed_values()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var b = tensor(new float[] { 10, 20, 30, 40 }, 2, 2);
        using var c = a + b * 2.0;
        Assert.Equal(new float[] { 21, 42, 63, 84 }, c.data<float>());
        using var m = a.matmul(b);
        Assert.Equal(new float[] { 70, 100, 150, 220 }, m.data<float>());
        Assert.Equal(new long[] { 2, 2 }, m.shape);
        Assert.Equal(ScalarType.Float32, m.dtype);
        using var d = 1.0 - a;
        Assert.Equal(new float[] { 0, -1, -2, -3 }, d.data<float>());
        using var q = b / a;
        Assert.Equal(new float[] { 10, 10, 10, 10 }, q.data<float>());
    }

    [Fact]
    public void Sum_over_dimension_zero_is_not_mistaken_for_a_dtype()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var s = a.sum(0);
        Assert.Equal(new float[] { 4, 6 }, s.data<float>());
        using var all = a.sum();
        Assert.Equal(10.0, all.item());
    }

    [Fact]
    public void Integer_tensors_keep_integer_arithmetic()
    {
        using var a = tensor(new long[] { 3, 5, 7 });
        using var b = a.add(a, alpha: 2);
        Assert.Equal(ScalarType.Int64, b.dtype);
        Assert.Equal(new long[] { 9, 15, 21 }, b.data<long>());
        Assert.Equal(21L, b.max().item<long>());
    }

    [Fact]
    public void Shape_error_raises_TorchException_and_the_next_op_still_works()
    {
        using var a = ones(2, 3);
        using var b = ones(4, 5);
        var e = Assert.Throws<TorchException>(() => a.matmul(b));
        Assert.Contains("cannot be multiplied", e.Message);
        Assert.DoesNotContain("frame #", e.Message); // libtorch's message, without the C++ backtrace
        using var c = a.sum();
        Assert.Equal(6.0, c.item());
    }

    [Fact]
    public void Non_c10_native_errors_also_become_TorchException()
    {
        // A data size mismatch is checked in the shim itself.
        var e = Assert.Throws<TorchException>(() => tensor<float>(new float[5], [2, 3]));
        Assert.Contains("needs 24", e.Message);
    }

    [Fact]
    public void Backward_gives_the_analytic_gradient_and_zero_grad_clears_it()
    {
        using var x = tensor(new float[] { 1, 2, 3 }).requires_grad_();
        using (var y = x * x)
        using (var s = y.sum())
            s.backward();
        using (var g = x.grad!)
            Assert.Equal(new float[] { 2, 4, 6 }, g.data<float>());
        // Gradients accumulate across backward calls, as in PyTorch.
        using (var s2 = x.sum())
            s2.backward();
        using (var g2 = x.grad!)
            Assert.Equal(new float[] { 3, 5, 7 }, g2.data<float>());
        x.zero_grad();
        Assert.Null(x.grad);
    }

    [Fact]
    public void No_grad_scope_records_nothing_and_restores_the_previous_mode()
    {
        using var x = ones(3).requires_grad_();
        Assert.True(is_grad_enabled());
        using (no_grad())
        {
            Assert.False(is_grad_enabled());
            using var y = x * 2.0;
            Assert.False(y.requires_grad);
        }
        Assert.True(is_grad_enabled());
        using var z = x * 2.0;
        Assert.True(z.requires_grad);
        using var d = z.detach();
        Assert.False(d.requires_grad);
    }

    [Fact]
    public void Dispose_scope_releases_intermediates_but_not_moved_results()
    {
        Tensor kept, dropped;
        using (var scope = NewDisposeScope())
        {
            using var a = ones(4);
            dropped = a + 1.0;
            kept = (a * 3.0).MoveToOuterDisposeScope();
            Assert.Equal(2, scope.Count);
        }
        Assert.True(dropped.IsDisposed);
        Assert.False(kept.IsDisposed);
        Assert.Equal(12.0, kept.sum().item());
        kept.Dispose();
        Assert.Throws<ObjectDisposedException>(() => kept.sum());
    }

    [Fact]
    public void Nested_dispose_scopes_hand_results_to_the_outer_scope()
    {
        Tensor result;
        using (var outer = NewDisposeScope())
        {
            using (NewDisposeScope())
                result = ones(2).MoveToOuterDisposeScope();
            Assert.False(result.IsDisposed);
            Assert.Equal(1, outer.Count);
        }
        Assert.True(result.IsDisposed);
    }

    [Fact]
    public void Creation_functions_have_the_requested_values_shapes_and_dtypes()
    {
        using var z = zeros([2, 3], float64);
        Assert.Equal(ScalarType.Float64, z.dtype);
        Assert.Equal(0.0, z.sum().item());
        using var f = full([2, 2], 2.5);
        Assert.Equal(new float[] { 2.5f, 2.5f, 2.5f, 2.5f }, f.data<float>());
        using var r = arange(0, 5);
        Assert.Equal(ScalarType.Int64, r.dtype);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4 }, r.data<long>());
        using var s = arange(0.0, 1.0, 0.25);
        Assert.Equal(new float[] { 0, 0.25f, 0.5f, 0.75f }, s.data<float>());
        using var e = empty([3, 0]);
        Assert.Equal(0, e.numel());
    }

    [Fact]
    public void Random_tensors_follow_the_seed_and_their_distribution()
    {
        manual_seed(7);
        using var a = randn(100_000);
        manual_seed(7);
        using var b = randn(100_000);
        Assert.True(a.equal(b));
        // Mean 0 and standard deviation 1 within a few standard errors (1/sqrt(n) = 0.0032).
        Assert.InRange(a.mean().item(), -0.015, 0.015);
        Assert.InRange(a.var(0).sqrt().item(), 0.985, 1.015);
        using var u = rand(100_000);
        Assert.InRange(u.min().item(), 0.0, 1e-3);
        Assert.InRange(u.max().item(), 0.999, 1.0);
        Assert.InRange(u.mean().item(), 0.49, 0.51);
    }

    [Fact]
    public void Rng_state_round_trip_replays_the_same_numbers()
    {
        manual_seed(3);
        using var state = get_rng_state();
        using var first = rand(8);
        set_rng_state(state);
        using var again = rand(8);
        Assert.True(first.equal(again));
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Bool)]
    public void Dtype_conversions_round_trip_small_integers(ScalarType dtype)
    {
        using var a = tensor(new float[] { 0, 1, 2, 3 });
        using var c = a.to(dtype);
        Assert.Equal(dtype, c.dtype);
        Assert.Equal(4 * dtype.ElementSize(), c.bytes().Length);
        using var back = c.to(float32);
        var expected = dtype == ScalarType.Bool ? new float[] { 0, 1, 1, 1 } : new float[] { 0, 1, 2, 3 };
        Assert.Equal(expected, back.data<float>());
    }

    [Fact]
    public void Reading_data_with_the_wrong_element_type_is_an_error()
    {
        using var a = ones(2);
        var e = Assert.Throws<TorchException>(() => a.data<double>());
        Assert.Contains("float32", e.Message);
    }

    [Fact]
    public void Devices_parse_and_cpu_tensors_report_cpu()
    {
        Assert.Equal(Device.CPU, Device.Parse("cpu"));
        Assert.Equal(Device.CUDA(1), Device.Parse("cuda:1"));
        Assert.Throws<ArgumentException>(() => Device.Parse("tpu"));
        using var a = ones(1);
        Assert.Equal(DeviceType.CPU, a.device.Type);
        if (!cuda.is_available())
            Assert.Throws<TorchException>(() => a.to(Device.CUDA()));
    }

    [Fact]
    public void Thread_count_is_configurable()
    {
        var before = get_num_threads();
        set_num_threads(1);
        Assert.Equal(1, get_num_threads());
        set_num_threads(before);
        Assert.Equal(before, get_num_threads());
    }

    [Fact]
    public void Missing_operators_are_detected_at_run_time()
    {
        Assert.False(new Op("aten::no_such_operator").IsAvailable);
        Assert.True(new Op("aten::add", "Tensor").IsAvailable);
        var e = Assert.Throws<TorchException>(() => new Op("aten::no_such_operator").Call([]));
        Assert.Contains("not available", e.Message);
    }

    [Fact]
    public void Shape_ops_give_the_documented_layouts()
    {
        using var a = arange(0, 6).view(2, 3);
        using var t = a.t().contiguous();
        Assert.Equal(new long[] { 0, 3, 1, 4, 2, 5 }, t.data<long>());
        using var c = cat([a, a], 1);
        Assert.Equal(new long[] { 2, 6 }, c.shape);
        using var s = stack([a, a]);
        Assert.Equal(new long[] { 2, 2, 3 }, s.shape);
        using var n = a.narrow(1, 1, 2);
        Assert.Equal(new long[] { 1, 2, 4, 5 }, n.contiguous().data<long>());
        using var sl = a.slice(1, 0, null, 2);
        Assert.Equal(new long[] { 0, 2, 3, 5 }, sl.contiguous().data<long>());
        using var idx = tensor(new long[] { 2, 0 });
        using var sel = a.index_select(1, idx);
        Assert.Equal(new long[] { 2, 0, 5, 3 }, sel.data<long>());
        using var g = a.gather(1, tensor(new long[] { 1, 2 }, 2, 1));
        Assert.Equal(new long[] { 1, 5 }, g.data<long>());
        using var e = tensor(new long[] { 1, 2 }, 2, 1).expand(2, 3);
        Assert.Equal(new long[] { 1, 1, 1, 2, 2, 2 }, e.contiguous().data<long>());
        using var p = arange(0, 24).view(2, 3, 4).permute(2, 0, 1);
        Assert.Equal(new long[] { 4, 2, 3 }, p.shape);
        using var u = a.unsqueeze(0).unsqueeze(-1);
        Assert.Equal(new long[] { 1, 2, 3, 1 }, u.shape);
        using var f = u.flatten(1, 2);
        Assert.Equal(new long[] { 1, 6, 1 }, f.shape);
        Assert.Equal(new long[] { 6 }, f.squeeze().shape);
        Assert.Equal(new long[] { 6, 1 }, f.squeeze(0).shape);
        var chunks = a.chunk(3, 1);
        Assert.Equal(3, chunks.Length);
        Assert.Equal(new long[] { 2, 5 }, chunks[2].contiguous().data<long>());
    }
}
