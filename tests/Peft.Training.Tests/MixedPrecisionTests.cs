using Peft.Abstractions.Options;
using Peft.Training.Baselines;
using Peft.Vision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training.Tests;

/// <summary>Run:Precision in the trainer: fp32 masters for reduced backbone tensors, and fp16's dynamic loss scale.</summary>
public sealed class MixedPrecisionTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("peft-precision-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void The_fp16_scaler_unscales_skips_overflows_backs_off_grows_and_gives_up_below_one()
    {
        using var p = new Parameter(zeros(3), requires_grad: true);
        using var scaler = new MixedPrecision(Precision.Fp16, [("p", p)]);
        Assert.Equal(65536, scaler.Scale);

        p.grad = tensor(new[] { 65536f, -131072f, 32768f });
        Assert.True(scaler.FinishGradients());
        Assert.Equal(new[] { 1f, -2f, 0.5f }, p.grad!.data<float>().ToArray());

        p.grad = tensor(new[] { 1f, float.PositiveInfinity, 0f });
        Assert.False(scaler.FinishGradients());
        Assert.Null(p.grad);
        Assert.Equal((32768.0, 0, 1), scaler.State);

        for (var i = 0; i < MixedPrecision.GrowthInterval; i++)
        {
            p.grad = ones(3);
            Assert.True(scaler.FinishGradients());
        }
        Assert.Equal(65536, scaler.Scale);

        // 16 more halvings reach 1; the 17th would go below it: the gradients are not finite at any scale.
        for (var i = 0; i < 16; i++)
        {
            p.grad = tensor(new[] { float.NaN, 0f, 0f });
            Assert.False(scaler.FinishGradients());
        }
        Assert.Equal(1, scaler.Scale);
        p.grad = tensor(new[] { float.NaN, 0f, 0f });
        var collapse = Assert.Throws<InvalidOperationException>(() => scaler.FinishGradients());
        Assert.Contains("18 overflowing steps", collapse.Message);
    }

    [Fact]
    public void A_bf16_backbone_computes_its_products_in_bf16_and_keeps_norms_and_tokens_fp32()
    {
        using var vit = TinyTask.Backbone();
        var identity = vit.Identity;
        using var images = randn(2, 1, 16, 16);
        using var before = vit.forward_features(images);
        vit.ToPrecision(ScalarType.BFloat16);
        Assert.Equal(identity, vit.Identity);
        foreach (var (name, p) in vit.named_parameters())
        {
            var reduced = name.StartsWith("patch_embed.", StringComparison.Ordinal) || name.Contains(".attn.", StringComparison.Ordinal)
                || name.Contains(".mlp.", StringComparison.Ordinal);
            Assert.True(p.dtype == (reduced ? ScalarType.BFloat16 : ScalarType.Float32), $"{name} is {p.dtype}");
        }
        using var after = vit.forward_features(images);
        Assert.Equal(ScalarType.Float32, after.dtype);
        // bf16 keeps 8 bits of mantissa: the features agree to a few hundredths of their unit scale, not exactly.
        using var diff = after.sub(before).abs().max();
        Assert.InRange(diff.item<float>(), 1e-6f, 0.1f);
    }

    [Theory]
    [InlineData(Precision.Bf16)]
    [InlineData(Precision.Fp16)]
    public void Tuning_reduced_backbone_tensors_trains_fp32_masters_as_well_as_fp32(Precision precision)
    {
        using var train = TinyTask.Source(256, 11, 32, shuffle: true);
        using var test = TinyTask.Source(128, 12, 64, shuffle: false);
        var recipe = new TrainerOptions
        {
            Epochs = 8, BatchSize = 32, Optimizer = OptimizerKind.Sgd, BaseLr = 0.1, WarmupEpochs = 1, ScaleLrByBatch = true, WeightDecay = 1e-4,
            EvalEvery = 8, CheckpointEvery = 1, ClipGradNorm = 1,
        };
        double Run(Precision p, out Trainer trainer, VisionTransformer vit)
        {
            if (p != Precision.Fp32) vit.ToPrecision(MixedPrecision.TypeOf(p));
            manual_seed(5);
            var options = new BaselineOptions();
            var method = new BaselineMethod(BaselineKind.Bias, vit, 4, options);
            trainer = new Trainer(new TrainerSetup
            {
                Backbone = vit, Method = method, MethodId = "bias", MethodOptions = options, Recipe = recipe, Train = train, Test = test,
                RunDirectory = Path.Combine(_dir.FullName, p.ToString()), ConfigJson = "{}", Precision = p,
            });
            return trainer.Run().LastEpoch!.Test!.Value;
        }
        using var vit32 = TinyTask.Backbone();
        var fp32 = Run(Precision.Fp32, out _, vit32);
        using var vit = TinyTask.Backbone();
        var reduced = Run(precision, out var trainer, vit);

        Assert.True(fp32 > 0.9, $"fp32 {fp32}");
        // 128 test images: a point is 1.3 images, and bf16 sums differ with the threads' summation order from run to run.
        Assert.True(Math.Abs(reduced - fp32) <= 0.04, $"{precision} {reduced} vs fp32 {fp32}");
        // What the optimizer updated and the run directory saved are fp32; the model runs a reduced copy of each.
        var tuned = trainer.TrainableParameters.Where(t => t.Name.StartsWith("backbone.blocks.", StringComparison.Ordinal) && t.Name.Contains(".attn."))
            .Select(t => (Name: t.Name[Abstractions.Methods.Trainables.BackbonePrefix.Length..], t.Parameter)).ToList();
        Assert.NotEmpty(tuned);
        var model = vit.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        var invalid = trainer.TrainableParameters.Where(t => t.Parameter.IsInvalid).Select(t => t.Name).ToList();
        Assert.True(invalid.Count == 0, "disposed: " + string.Join(", ", invalid));
        foreach (var (name, master) in trainer.TrainableParameters)
        {
            Assert.Equal(ScalarType.Float32, master.dtype);
            Assert.Equal(DeviceType.CPU, master.device_type);
        }
        foreach (var (name, master) in tuned)
        {
            Assert.Equal(MixedPrecision.TypeOf(precision), model[name].dtype);
            using var rounded = master.to(model[name].dtype);
            Assert.True(rounded.allclose(model[name], rtol: 0, atol: 0), $"{name}: the model's copy is not the master's");
        }
        using var checkpoint = Engine.Formats.SafeTensors.Open(Path.Combine(_dir.FullName, precision.ToString(), "checkpoint", "state.safetensors"));
        foreach (var name in checkpoint.Names)
            Assert.True(checkpoint.Info(name).DType is not (ScalarType.BFloat16 or ScalarType.Float16), $"checkpoint {name} is {checkpoint.Info(name).DType}");
    }
}
