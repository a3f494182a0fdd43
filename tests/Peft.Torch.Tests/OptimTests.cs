using static Peft.Torch.torch;
using static Peft.Torch.torch.nn;
using static Peft.Torch.torch.optim;

namespace Peft.Torch.Tests;

/// <summary>
/// Optimizers on the quadratic f(p) = ½ Σ aᵢ (pᵢ − cᵢ)², gradient aᵢ (pᵢ − cᵢ), against scalar loops
/// written from PyTorch's documented algorithms (torch.optim.SGD / AdamW pages).
/// </summary>
public class OptimTests
{
    private static readonly double[] P0 = [1, -2, 0.5], A = [1, 3, 0.5], C = [0.2, 0.1, -1];

    private static double Gradient(double[] p, int i) => A[i] * (p[i] - C[i]);

    private static void QuadraticBackward(Tensor p)
    {
        using var scope = NewDisposeScope();
        var a = tensor(A);
        var c = tensor(C);
        (a * (p - c).pow(2)).sum().mul(0.5).backward();
    }

    private static double[] Train(Func<Parameter, Optimizer> make, int steps)
    {
        using var p = new Parameter(tensor(P0));
        using var optimizer = make(p);
        for (var t = 0; t < steps; t++)
        {
            QuadraticBackward(p);
            optimizer.step();
            optimizer.zero_grad();
        }
        return p.data<double>();
    }

    private static double[] SgdReference(int steps, double lr, double momentum, double dampening, double weightDecay, bool nesterov)
    {
        var p = (double[])P0.Clone();
        var b = new double[p.Length];
        for (var t = 0; t < steps; t++)
            for (var i = 0; i < p.Length; i++)
            {
                var g = Gradient(p, i) + weightDecay * p[i];
                if (momentum != 0)
                {
                    b[i] = t == 0 ? g : momentum * b[i] + (1 - dampening) * g;
                    g = nesterov ? g + momentum * b[i] : b[i];
                }
                p[i] -= lr * g;
            }
        return p;
    }

    private static double[] AdamWReference(int steps, double lr, double beta1, double beta2, double eps, double weightDecay, bool amsgrad)
    {
        var p = (double[])P0.Clone();
        var (m, v, vMax) = (new double[p.Length], new double[p.Length], new double[p.Length]);
        for (var t = 1; t <= steps; t++)
            for (var i = 0; i < p.Length; i++)
            {
                var g = Gradient(p, i);
                p[i] *= 1 - lr * weightDecay;
                m[i] = beta1 * m[i] + (1 - beta1) * g;
                v[i] = beta2 * v[i] + (1 - beta2) * g * g;
                vMax[i] = Math.Max(vMax[i], v[i]);
                var denominator = Math.Sqrt(amsgrad ? vMax[i] : v[i]) / Math.Sqrt(1 - Math.Pow(beta2, t)) + eps;
                p[i] -= lr / (1 - Math.Pow(beta1, t)) * m[i] / denominator;
            }
        return p;
    }

    private static void Close(double[] expected, double[] actual)
    {
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-12 * (1 + Math.Abs(expected[i])), $"p[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
    }

    [Theory]
    [InlineData(0.0, 0.0, 0.0, false)]
    [InlineData(0.9, 0.0, 0.0, false)]
    [InlineData(0.9, 0.3, 0.05, false)]
    [InlineData(0.8, 0.0, 0.1, true)]
    public void SGD_matches_the_documented_update(double momentum, double dampening, double weightDecay, bool nesterov)
    {
        var actual = Train(p => new SGD([p], lr: 0.1, momentum, dampening, weightDecay, nesterov), 5);
        var expected = SgdReference(5, 0.1, momentum, dampening, weightDecay, nesterov);
        Close(expected, actual);
        Assert.NotEqual(P0, actual);
    }

    [Theory]
    [InlineData(0.0, false)]
    [InlineData(0.1, false)]
    [InlineData(0.1, true)]
    public void AdamW_matches_the_documented_update(double weightDecay, bool amsgrad)
    {
        var actual = Train(p => new AdamW([p], lr: 0.05, betas: (0.8, 0.95), eps: 1e-6, weight_decay: weightDecay, amsgrad: amsgrad), 6);
        Close(AdamWReference(6, 0.05, 0.8, 0.95, 1e-6, weightDecay, amsgrad), actual);
    }

    [Fact]
    public void AdamW_first_step_moves_every_coordinate_by_lr()
    {
        // With m̂ = g and v̂ = g² after one step, the update is lr·g/(|g| + eps) ≈ lr·sign(g).
        var p = Train(q => new AdamW([q], lr: 0.01, weight_decay: 0), 1);
        double[] expected = [P0[0] - 0.01, P0[1] + 0.01, P0[2] - 0.01];
        for (var i = 0; i < 3; i++) Assert.Equal(expected[i], p[i], 8);
    }

    [Fact]
    public void Parameter_groups_keep_their_own_options_and_inherit_the_rest()
    {
        using var p1 = new Parameter(tensor(P0));
        using var p2 = new Parameter(tensor(P0));
        using var sgd = new SGD([new ParamGroup([p1]), new SGD.Group([p2], lr: 0.05, momentum: 0.5)], lr: 0.1, weight_decay: 0.01);
        Assert.Equal(0.1, sgd.param_groups[0].lr);
        Assert.Equal(0.0, sgd.param_groups[0]["momentum"]);
        Assert.Equal(0.01, sgd.param_groups[1].weight_decay);
        Assert.Equal(0.05, sgd.param_groups[1].initial_lr);
        for (var t = 0; t < 3; t++)
        {
            QuadraticBackward(p1);
            QuadraticBackward(p2);
            sgd.step();
            sgd.zero_grad();
        }
        Close(SgdReference(3, 0.1, 0, 0, 0.01, false), p1.data<double>());
        Close(SgdReference(3, 0.05, 0.5, 0, 0.01, false), p2.data<double>());

        Assert.Throws<ArgumentException>(() => new SGD([p1], lr: 0.1, nesterov: true));
        Assert.Throws<ArgumentException>(() => new SGD([new ParamGroup([p1]), new ParamGroup([p1])], lr: 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p1], betas: (1.0, 0.9)));
    }

    [Fact]
    public void Warmup_cosine_schedule_hits_its_key_values()
    {
        using var p1 = new Parameter(zeros(1));
        using var p2 = new Parameter(zeros(1));
        using var sgd = new SGD([new ParamGroup([p1]), new ParamGroup([p2], lr: 1.0)], lr: 0.1);
        var schedule = new lr_scheduler.WarmupCosineSchedule(sgd, warmup_steps: 10, total_steps: 110, final_factor: 0.1);
        Assert.Equal([0.0, 0.0], schedule.get_last_lr()); // warmup starts at 0
        Assert.Equal(0.05, schedule.get_lr(5)[0], 15);
        Assert.Equal([0.1, 1.0], schedule.get_lr(10)); // end of warmup: the base lrs
        Assert.Equal((0.1 + 0.01) / 2, schedule.get_lr(60)[0], 15); // half-way through the cosine
        Assert.Equal((1.0 + 0.1) / 2, schedule.get_lr(60)[1], 15);
        Assert.Equal(0.01 + 0.09 * 0.5 * (1 + Math.Cos(Math.PI * 0.25)), schedule.get_lr(35)[0], 15);
        Assert.Equal(0.01, schedule.get_lr(110)[0], 15); // end: the final value, and it stays there
        Assert.Equal(0.01, schedule.get_lr(500)[0], 15);

        for (var s = 0; s < 10; s++) schedule.step();
        Assert.Equal(10, schedule.last_step);
        Assert.Equal([0.1, 1.0], schedule.get_last_lr());
        Assert.Equal(0.1, sgd.param_groups[0].lr);

        var saved = schedule.state_dict();
        schedule.step();
        var resumed = new lr_scheduler.WarmupCosineSchedule(sgd, 10, 110, final_factor: 0.1);
        resumed.load_state_dict(saved);
        Assert.Equal([0.1, 1.0], resumed.get_last_lr());

        var fromHalf = new lr_scheduler.WarmupCosineSchedule(sgd, 4, 8, warmup_start_factor: 0.5);
        Assert.Equal([0.05, 0.5], fromHalf.get_last_lr());
        Assert.Equal(0.075, fromHalf.get_lr(2)[0], 15);
    }

    [Fact]
    public void Clip_grad_norm_returns_the_total_norm_and_scales_gradients_to_max_norm()
    {
        using var a = new Parameter(zeros(2));
        using var b = new Parameter(zeros(1));
        using var unused = new Parameter(zeros(1));
        void SetGradients()
        {
            a.grad = tensor(new float[] { 3, 4 });
            b.grad = tensor(new float[] { 12 });
        }
        SetGradients();
        var total = utils.clip_grad_norm_([a, b, unused], max_norm: 6.5);
        Assert.Equal(13.0, total, 5); // √(3² + 4² + 12²)
        var scale = 6.5 / (13 + 1e-6);
        var clipped = a.grad!.data<float>();
        Assert.Equal(3 * scale, clipped[0], 5);
        Assert.Equal(4 * scale, clipped[1], 5);
        Assert.Equal(12 * scale, b.grad!.item(), 5);

        SetGradients();
        Assert.Equal(13.0, utils.clip_grad_norm_([a, b], max_norm: 20), 5);
        Assert.Equal(new float[] { 3, 4 }, a.grad!.data<float>()); // under the limit: untouched

        SetGradients();
        Assert.Equal(12.0, utils.clip_grad_norm_([a, b], max_norm: 6, norm_type: double.PositiveInfinity), 5);
        Assert.Equal(6.0, b.grad!.item(), 4);

        SetGradients();
        utils.clip_grad_value_([a, b], 3.5);
        Assert.Equal(new float[] { 3, 3.5f }, a.grad!.data<float>());
        Assert.Equal(3.5, b.grad!.item());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Optimizer_state_dict_round_trip_resumes_identically(bool adam)
    {
        manual_seed(11);
        using var x = randn(16, 3);
        using var y = randint(0, 2, [16]);
        Optimizer Make(Module m, double lr) => adam
            ? new AdamW(m.parameters(), lr, weight_decay: 0.05, amsgrad: true)
            : new SGD(m.parameters(), lr, momentum: 0.9, weight_decay: 1e-3, nesterov: true);
        void Steps(Linear model, Optimizer optimizer, int n)
        {
            for (var k = 0; k < n; k++)
            {
                using var scope = NewDisposeScope();
                functional.cross_entropy(model.call(x), y).backward();
                optimizer.step();
                optimizer.zero_grad();
            }
        }

        using var a = new Linear(3, 2);
        using var optA = Make(a, 0.1);
        Steps(a, optA, 3);
        using var modelState = a.state_dict();
        var savedModel = modelState.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var savedOptimizer = optA.state_dict();
        Steps(a, optA, 4);

        Assert.Equal(adam ? 3.0 : 0.0, savedOptimizer.scalars.GetValueOrDefault("state.1.step"));
        Assert.Equal(0.1, savedOptimizer.scalars["param_groups.0.lr"]);
        string[] expectedKeys = adam
            ? ["state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq", "state.1.exp_avg", "state.1.exp_avg_sq", "state.1.max_exp_avg_sq"]
            : ["state.0.momentum_buffer", "state.1.momentum_buffer"];
        Assert.Equal(expectedKeys, savedOptimizer.tensors.Keys);

        using var b = new Linear(3, 2);
        b.load_state_dict(savedModel);
        using var optB = Make(b, 123.0); // the lr comes back from the checkpoint
        optB.load_state_dict(savedOptimizer);
        Assert.Equal(0.1, optB.param_groups[0].lr);
        Steps(b, optB, 4);
        Assert.True(a.weight.equal(b.weight) && a.bias!.equal(b.bias!), "resumed training diverged");

        using var other = new Linear(3, 2);
        using var twoGroups = new SGD([new ParamGroup([other.weight]), new ParamGroup([other.bias!])], lr: 0.1);
        Assert.Throws<ArgumentException>(() => twoGroups.load_state_dict(savedOptimizer));
        foreach (var t in savedModel.Values) t.Dispose();
    }
}
