using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Backbone;
using Peft.Configuration;
using Peft.Host.Hosting;
using Peft.Host.Verbs;
using Peft.Training;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Bench;

/// <summary>
/// `peft bench plain`: the same training step as `peft bench step`, written as a plain TorchSharp loop with no host,
/// no hooks, no trainer and no data pipeline: a functional ViT over a dictionary of weights (the shape of
/// tests/reference/speed_reference.py) with the same fused attention as Peft's ViT, one dispose scope per step, one reused random batch, TorchSharp's SGD. The
/// difference to Peft's step is the framework's overhead. Methods: linear, full, bias, vpt-shallow, vpt-deep.
/// </summary>
public sealed class PlainStepVerb(IConfiguration configuration) : IVerb
{
    public static readonly IReadOnlyList<string> Methods = ["linear", "full", "bias", "vpt-shallow", "vpt-deep"];

    private const int Prompts = 10, Classes = 10;
    private const double PromptDropout = 0.1;

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = HyperParameters.Load<SpeedBenchOptions>(configuration).GetValueOrThrow();
        var method = options.Method;
        if (!Methods.Contains(method))
            throw new ArgumentException($"the plain loop has no '{method}' (it has {string.Join(", ", Methods)})");
        var spec = VitSpec.Preset(options.Model);
        manual_seed(0);
        var w = Weights(spec);
        var trainable = new Dictionary<string, Tensor> { ["head.weight"] = w["head.weight"], ["head.bias"] = w["head.bias"] };
        if (method == "full")
            foreach (var (k, v) in w) trainable[k] = v;
        if (method == "bias")
            foreach (var (k, v) in w.Where(kv => kv.Key.EndsWith(".bias", StringComparison.Ordinal))) trainable[k] = v;
        Tensor? shallow = null, deep = null;
        if (method.StartsWith("vpt", StringComparison.Ordinal))
        {
            trainable["prompt"] = shallow = rand(1, Prompts, spec.Dim).mul_(0.2).sub_(0.1);
            if (method == "vpt-deep") trainable["deep"] = deep = rand(spec.Depth - 1, Prompts, spec.Dim).mul_(0.2).sub_(0.1);
        }
        var parameters = trainable.Values.Select(t => new Parameter(t)).ToList();
        var byName = trainable.Keys.Zip(parameters).ToDictionary(p => p.First, p => (Tensor)p.Second);
        foreach (var (k, v) in byName) w[k] = v;
        using var optimizer = optim.SGD(parameters, 0.01, momentum: 0.9, weight_decay: 1e-4);

        var batch = options.BatchSize;
        using var x = randn(batch, 3, spec.ImageSize, spec.ImageSize);
        using var y = arange(batch, ScalarType.Int64).remainder(Classes);
        Tensor Logits(bool training)
        {
            // VPT's recipe: prompt dropout 0.1 for deep, none for shallow.
            var p = method.StartsWith("vpt", StringComparison.Ordinal) ? F.dropout(w["prompt"], method == "vpt-deep" ? PromptDropout : 0, training) : null;
            var d = method == "vpt-deep" ? F.dropout(w["deep"], PromptDropout, training) : null;
            var pooled = Forward(w, spec, x, p, d);
            return F.linear(pooled, w["head.weight"], w["head.bias"]);
        }

        var train = new List<double>();
        for (var step = 0; step < options.WarmupSteps + options.Steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                var loss = method == "linear" ? LinearLoss() : F.cross_entropy(Logits(training: true), y);
                loss.backward();
                optimizer.step();
                optimizer.zero_grad();
                _ = loss.item<float>();
            }
            train.Add(clock.Elapsed.TotalSeconds);
        }
        var evals = new List<double>();
        using (no_grad())
            for (var step = 0; step < 1 + options.EvalSteps; step++)
            {
                var clock = Stopwatch.StartNew();
                using (NewDisposeScope()) _ = Logits(training: false).argmax(1).sum().item<long>();
                evals.Add(clock.Elapsed.TotalSeconds);
            }

        // Linear probing: the frozen forward without a graph, then the head.
        Tensor LinearLoss()
        {
            Tensor pooled;
            using (no_grad()) pooled = Forward(w, spec, x, null, null);
            return F.cross_entropy(F.linear(pooled, w["head.weight"], w["head.bias"]), y);
        }

        var trainSteps = train.Skip(options.WarmupSteps).ToList();
        var evalSteps = evals.Skip(1).ToList();
        var measurement = new StepMeasurement
        {
            Framework = $"plain TorchSharp {Peft.Engine.TorchEngine.TorchSharpVersion} (libtorch {__version__})", Model = options.Model,
            Method = method, Batch = batch, Threads = get_num_threads(),
            TrainStepSeconds = SpeedStepVerb.Median(trainSteps), EvalStepSeconds = SpeedStepVerb.Median(evalSteps),
            TrainImagesPerSecond = batch / SpeedStepVerb.Median(trainSteps), EvalImagesPerSecond = batch / SpeedStepVerb.Median(evalSteps),
            PeakResidentBytes = ProcessMemory.PeakResidentBytes(), TrainableParameters = parameters.Sum(p => p.numel()),
            TrainStepsSeconds = train, EvalStepsSeconds = evals,
        };
        var json = JsonSerializer.Serialize(measurement, StepMeasurement.Json);
        if (options.StepOutput is { Length: > 0 } output) File.WriteAllText(output, json + "\n");
        Console.WriteLine(json);
        Log.Information("Plain TorchSharp {Method} on {Spec}: {Step:F2} s a training step", method, spec, measurement.TrainStepSeconds);
        return Task.FromResult(ExitCodes.Success);
    }

    /// <summary>timm-shaped random weights: trunc-normal(0.02) matrices, zero biases, unit norms.</summary>
    private static Dictionary<string, Tensor> Weights(VitSpec s)
    {
        Tensor Normal(params long[] shape) => randn(shape).mul_(0.02);
        var w = new Dictionary<string, Tensor>
        {
            ["patch_embed.proj.weight"] = Normal(s.Dim, s.Channels, s.PatchSize, s.PatchSize),
            ["patch_embed.proj.bias"] = zeros(s.Dim),
            ["cls_token"] = Normal(1, 1, s.Dim),
            ["pos_embed"] = Normal(1, 1 + s.NumPatches, s.Dim),
            ["norm.weight"] = ones(s.Dim), ["norm.bias"] = zeros(s.Dim),
            ["head.weight"] = Normal(Classes, s.Dim), ["head.bias"] = zeros(Classes),
        };
        for (var i = 0; i < s.Depth; i++)
        {
            var b = $"blocks.{i}.";
            w[b + "norm1.weight"] = ones(s.Dim);
            w[b + "norm1.bias"] = zeros(s.Dim);
            w[b + "attn.qkv.weight"] = Normal(3 * s.Dim, s.Dim);
            w[b + "attn.qkv.bias"] = zeros(3 * s.Dim);
            w[b + "attn.proj.weight"] = Normal(s.Dim, s.Dim);
            w[b + "attn.proj.bias"] = zeros(s.Dim);
            w[b + "norm2.weight"] = ones(s.Dim);
            w[b + "norm2.bias"] = zeros(s.Dim);
            w[b + "mlp.fc1.weight"] = Normal(s.MlpHidden, s.Dim);
            w[b + "mlp.fc1.bias"] = zeros(s.MlpHidden);
            w[b + "mlp.fc2.weight"] = Normal(s.Dim, s.MlpHidden);
            w[b + "mlp.fc2.bias"] = zeros(s.Dim);
        }
        return w;
    }

    /// <summary>The ViT's pooled CLS feature, with VPT's prompts at [CLS, prompts, patches] when given.</summary>
    private static Tensor Forward(Dictionary<string, Tensor> w, VitSpec s, Tensor images, Tensor? shallow, Tensor? deep)
    {
        long b = images.size(0), dim = s.Dim, heads = s.Heads;
        var patches = F.conv2d(images, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], strides: [s.PatchSize, s.PatchSize])
            .flatten(2).transpose(1, 2);
        var x = cat([w["cls_token"].expand(b, 1, dim), patches], 1).add(w["pos_embed"]);
        if (shallow is not null) x = cat([x.narrow(1, 0, 1), shallow.expand(b, Prompts, dim), x.narrow(1, 1, s.NumPatches)], 1);
        for (var i = 0; i < s.Depth; i++)
        {
            if (deep is not null && i > 0)
                x = cat([x.narrow(1, 0, 1), deep[i - 1].unsqueeze(0).expand(b, Prompts, dim), x.narrow(1, 1 + Prompts, s.NumPatches)], 1);
            var p = $"blocks.{i}.";
            long t = x.size(1);
            var h = F.layer_norm(x, [dim], w[p + "norm1.weight"], w[p + "norm1.bias"], 1e-6);
            var qkv = F.linear(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"]).view(b, t, 3, heads, dim / heads).permute(2, 0, 3, 1, 4);
            var merged = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(b, t, dim);
            x = x.add(F.linear(merged, w[p + "attn.proj.weight"], w[p + "attn.proj.bias"]));
            var m = F.layer_norm(x, [dim], w[p + "norm2.weight"], w[p + "norm2.bias"], 1e-6);
            m = F.linear(F.gelu(F.linear(m, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])), w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"]);
            x = x.add(m);
        }
        return F.layer_norm(x, [dim], w["norm.weight"], w["norm.bias"], 1e-6).select(1, 0);
    }
}
