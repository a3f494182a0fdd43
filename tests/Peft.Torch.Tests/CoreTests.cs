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
    }

    [Fact]
    public void Shape_error_raises_TorchException_and_the_next_op_still_works()
    {
        using var a = ones(2, 3);
        using var b = ones(4, 5);
        var e = Assert.Throws<TorchException>(() => a.matmul(b));
        Assert.Contains("cannot be multiplied", e.Message);
        using var c = a.sum();
        Assert.Equal(6.0, c.item());
    }

    [Fact]
    public void Backward_gives_the_analytic_gradient()
    {
        using var x = tensor(new float[] { 1, 2, 3 }).requires_grad_();
        using var y = x * x;
        using var s = y.sum();
        s.backward();
        using var g = x.grad!;
        Assert.Equal(new float[] { 2, 4, 6 }, g.data<float>());
    }
}
