using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Engine.Formats;
using Peft.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Shared;

/// <summary>A backbone that has only a shape: enough to size a method and count its parameters.</summary>
public sealed class SpecOnlyBackbone(VitSpec spec, BackboneKind kind = BackboneKind.Supervised) : IVisionBackbone
{
    private sealed class Empty() : nn.Module(nameof(Empty));
    public VitSpec Spec => spec;
    public BackboneKind Kind => kind;
    public nn.Module Module { get; } = new Empty();
    public string Identity => "spec-only";
    public Device Device => CPU;
    public ForwardTrace Forward(Tensor images, IBackboneHooks hooks) => throw new NotSupportedException();
    public Tensor FinalNorm(Tensor x) => throw new NotSupportedException();
}

/// <summary>
/// Shared by the method plugins' tests: the small reference ViT (tests/reference/vit_reference.py) and
/// the parity check against a method's PyTorch reference fixture.
/// </summary>
public static class MethodTestSupport
{
    public static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");

    /// <summary>The reference ViT (image 32, patch 8, D 48, depth 3, 3 heads), frozen, in eval mode.</summary>
    public static VisionTransformer ReferenceVit(BackboneKind kind = BackboneKind.Supervised)
    {
        var arrays = Npz.LoadAll(Path.Combine(Fixtures, "vit_reference.npz"));
        var s = arrays["spec"].data<double>().ToArray();
        var vit = new VisionTransformer(new VitSpec((int)s[0], (int)s[1], (int)s[2], (int)s[3], (int)s[4], (int)s[5], s[6]), kind);
        var state = vit.state_dict(); // the module's own tensors: read, never disposed
        vit.load_state_dict(arrays.Where(kv => state.ContainsKey(kv.Key)).ToDictionary());
        foreach (var p in vit.parameters()) p.requires_grad = false;
        vit.eval();
        return vit;
    }

    /// <summary>Trainable parameters of a method built on a ViT-B/16-shaped backbone.</summary>
    public static long CountOnVitB16(Func<IVisionBackbone, IPeftMethod> create)
    {
        var backbone = new SpecOnlyBackbone(VitSpec.Preset("vit-b16"));
        using var method = create(backbone);
        return Trainables.Count(Trainables.Of(method, backbone));
    }

    /// <summary>
    /// Loads the fixture's <c>param/…</c> tensors into the method (and the backbone tensors it tunes, <c>param/backbone.…</c>,
    /// into <paramref name="vit"/>), runs forward, cross entropy (plus the method's auxiliary loss) and backward, and compares
    /// logits, loss and every <c>grad/…</c> to 1e-5. The backbone tensors are trainable only for the call, then restored.
    /// </summary>
    public static void AssertMatchesReference(string fixture, VisionTransformer vit, IPeftMethod method)
    {
        var arrays = Npz.LoadAll(Path.Combine(Fixtures, fixture));
        // Strict on what is trained: the fixture and the method hold exactly the same trainable tensors (its own and the
        // backbone's it tunes, under their adapter names), so an extra or a missing one fails here (buffers, such as
        // DA-VPT's class statistics, are the method's own state).
        var trainables = Trainables.Of(method, vit).ToDictionary(p => p.Name, p => p.Parameter);
        var fixtureTensors = arrays.Keys.Where(k => k.StartsWith("param/", StringComparison.Ordinal)).Select(k => k["param/".Length..]).ToHashSet();
        var missing = trainables.Keys.Where(n => !fixtureTensors.Contains(n)).ToList();
        var unknown = fixtureTensors.Except(method.Module.state_dict().Keys).Except(trainables.Keys).ToList();
        Assert.True(missing.Count == 0 && unknown.Count == 0,
            $"trainables the reference lacks: [{string.Join(", ", missing)}]; reference tensors the method lacks: [{string.Join(", ", unknown)}]");
        static bool OfBackbone(string name) => name.StartsWith(Trainables.BackbonePrefix, StringComparison.Ordinal);
        method.Module.load_state_dict(arrays.Where(kv => kv.Key.StartsWith("param/", StringComparison.Ordinal) && !OfBackbone(kv.Key["param/".Length..]))
            .ToDictionary(kv => kv.Key["param/".Length..], kv => kv.Value), strict: false);
        // The backbone's own tensors (read, never disposed): the fixture's values, trainable as the trainer makes them.
        var backbone = trainables.Where(kv => OfBackbone(kv.Key)).ToList();
        var saved = new List<Tensor>();
        using (no_grad())
            foreach (var (name, p) in backbone)
            {
                saved.Add(p.detach().clone());
                p.copy_(arrays["param/" + name]);
                p.requires_grad = true;
            }
        // With dropout on, the fixture holds the masks its reference drew (mask/NNN, in drawing order, with their rates):
        // every ReplayableDropout of the method replays them in training mode, and all of them must be used.
        var masks = new Queue<string>(arrays.Keys.Where(k => k.StartsWith("mask/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        var drawn = masks.Count;
        var dropouts = method.Module.modules().OfType<ReplayableDropout>().ToList();
        if (drawn > 0)
        {
            Assert.True(dropouts.Count > 0, "the fixture has dropout masks but the method has no ReplayableDropout");
            foreach (var dropout in dropouts)
            {
                var module = dropout;
                module.MaskSource = shape =>
                {
                    Assert.True(masks.TryDequeue(out var key), $"the method drew more than the reference's {drawn} dropout masks");
                    Assert.Equal(arrays["mask_rate/" + key["mask/".Length..]].item<double>(), module.p, 12);
                    return arrays[key];
                };
            }
            method.Module.train();
        }
        try
        {
            using var scope = NewDisposeScope();
            var trace = vit.Forward(arrays["input"], method);
            var logits = method.Head(trace.Pooled);
            var loss = nn.functional.cross_entropy(logits, arrays["labels"]);
            if (method.AuxiliaryLoss(trace, arrays["labels"]) is { } aux) loss = loss + aux;
            loss.backward();
            Assert.True(masks.Count == 0, $"the method drew {drawn - masks.Count} of the reference's {drawn} dropout masks");
            AssertClose(arrays["expected_logits"], logits, "logits");
            AssertClose(arrays["expected_loss"], loss.view(1), "loss");
            var grads = arrays.Keys.Where(k => k.StartsWith("grad/", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(grads);
            foreach (var key in grads)
            {
                var name = key["grad/".Length..];
                var grad = trainables[name].grad ?? throw new Xunit.Sdk.XunitException($"no gradient for {name}");
                AssertClose(arrays[key], grad, "gradient of " + name);
            }
        }
        finally
        {
            foreach (var dropout in dropouts) dropout.MaskSource = null;
            using (no_grad())
                for (var i = 0; i < backbone.Count; i++)
                {
                    var p = backbone[i].Value;
                    p.requires_grad = false;
                    p.grad?.zero_();
                    p.copy_(saved[i]);
                    saved[i].Dispose();
                }
        }
    }

    /// <summary>
    /// On an MAE backbone the method's head sees the mean of every token after CLS, prompts included, through a norm with
    /// no affine part (VPT's and VAPT's vit_mae.py: a fresh fc_norm); on a supervised one, the normed CLS token.
    /// </summary>
    public static void AssertReadoutFollowsBackboneKind(Func<VisionTransformer, IPeftMethod> create)
    {
        foreach (var kind in new[] { BackboneKind.Mae, BackboneKind.Supervised })
        {
            using var vit = ReferenceVit(kind);
            using var method = create(vit);
            method.Module.eval();
            using var scope = NewDisposeScope();
            manual_seed(3);
            var trace = vit.Forward(randn(2, 3, 32, 32), method);
            var normed = vit.norm.forward(trace.Tokens);
            // MAE: VPT's and VAPT's fresh fc_norm, weight 1 and bias 0 (the reference ViT's own norm is not the identity).
            var mean = trace.Tokens.narrow(1, 1, trace.Tokens.size(1) - 1).mean([1]);
            var centred = mean.sub(mean.mean([1], keepdim: true));
            var expected = kind == BackboneKind.Mae ? centred.div(centred.pow(2).mean([1], keepdim: true).add(1e-6).sqrt()) : normed.select(1, 0);
            AssertClose(expected, trace.Pooled, $"{kind} read-out", 1e-6);
        }
    }

    public static void AssertClose(Tensor expected, Tensor actual, string what, double tolerance = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var diff = (expected - actual).abs().max();
        Assert.True(diff.ToDouble() <= tolerance, $"{what}: max abs difference {diff.ToDouble():G3}");
    }
}
