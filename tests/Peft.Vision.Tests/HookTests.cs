using Peft.Abstractions.Backbone;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Peft.Vision.Tests.TestSupport;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Vision.Tests;

/// <summary>The forward loop's hook seams, driven by <see cref="ProbeHooks"/> and checked against hand computations.</summary>
public class HookTests
{
    private const int P = 2;                       // prompt tokens
    private static readonly int T = 1 + P + Small.NumPatches;

    private static Tensor RandomPrompts(long seed = 5)
    {
        manual_seed(seed);
        using var noise = randn(1, P, Small.Dim);
        return noise.mul(0.5);
    }

    private static ForwardTrace Run(VisionTransformer vit, Tensor images, IBackboneHooks hooks)
    {
        using var _ = no_grad();
        return vit.Forward(images, hooks);
    }

    // ---- hand computations from the block's weights ----------------------------------------------

    private static Tensor LayerNormByHand(Tensor x, LayerNorm ln)
    {
        var mean = x.mean([-1], keepdim: true);
        var centered = x.sub(mean);
        var variance = centered.pow(2).mean([-1], keepdim: true);
        return centered.div(variance.add(ln.eps).sqrt()).mul(ln.weight!).add(ln.bias!);
    }

    /// <summary>x·W[rows]ᵀ + b[rows]: one slice of a Linear's output features.</summary>
    private static Tensor LinearByHand(Tensor x, Linear linear, long firstRow = 0, long? rows = null)
    {
        var n = rows ?? linear.weight.size(0);
        return x.matmul(linear.weight.narrow(0, firstRow, n).t()).add(linear.bias!.narrow(0, firstRow, n));
    }

    private static Tensor GeluByHand(Tensor x) => x.mul(0.5).mul(x.div(Math.Sqrt(2)).erf().add(1));

    private static Tensor MlpByHand(Block block, Tensor h) =>
        LinearByHand(GeluByHand(LinearByHand(LayerNormByHand(h, block.norm2), block.mlp.fc1)), block.mlp.fc2);

    // ---- tests -------------------------------------------------------------------------------

    [Fact]
    public void Without_hooks_the_forward_is_the_plain_vit()
    {
        using var scope = NewDisposeScope();
        var (vit, arrays) = ReferenceParityTests.LoadReference();
        using var _ = vit;
        var images = arrays["input"];
        var trace = Run(vit, images, new ProbeHooks());

        // The seams by hand: embed, every block, final norm, CLS.
        using (no_grad())
        {
            var x = vit.Embed(images);
            for (var i = 0; i < vit.Spec.Depth; i++) x = vit.Block(i, x);
            AssertBitwiseEqual(x, trace.Tokens);
            AssertBitwiseEqual(vit.FinalNorm(x).select(1, 0), trace.Pooled);
        }
        AssertClose(arrays["expected_pooled"], trace.Pooled, 1e-5);           // the PyTorch reference
        AssertBitwiseEqual(Features(vit, images), trace.Pooled);
    }

    [Fact]
    public void Inserted_prompts_grow_the_sequence_and_change_the_patch_outputs()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var plain = Run(vit, images, new ProbeHooks());
        var prompted = Run(vit, images, new ProbeHooks { Prompts = RandomPrompts() });

        Assert.Equal([2L, 1 + Small.NumPatches, Small.Dim], plain.Tokens.shape);
        Assert.Equal([2L, T, Small.Dim], prompted.Tokens.shape);
        AssertDiffer(plain.Tokens.narrow(1, 1, Small.NumPatches), PromptTokens.Patches(prompted.Tokens, P));
        AssertDiffer(plain.Pooled, prompted.Pooled);
    }

    [Fact]
    public void Prompts_carry_no_position_embedding()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images(batch: 1);
        var prompts = RandomPrompts();
        var probe = new ProbeHooks { Prompts = prompts, Capture = { 0 } };
        Run(vit, images, probe);
        var input = probe.Captured[0].Input;
        AssertBitwiseEqual(prompts, PromptTokens.Slots(input, P));               // nothing was added to them
        using (no_grad()) AssertBitwiseEqual(vit.Embed(images).narrow(1, 1, Small.NumPatches), PromptTokens.Patches(input, P));

        // Inside the blocks tokens have no positions: a prompt holding patch 5's embedded value (its position
        // embedding included) comes out of the blocks exactly as patch 5 does; one holding the patch's value
        // without the position embedding does not.
        const int patch = 5;
        using var noGrad = no_grad();
        var embedded = vit.Embed(images).narrow(1, 1 + patch, 1);
        var raw = vit.patch_embed.call(images).narrow(1, patch, 1);
        foreach (var (value, same) in new[] { (embedded, true), (raw, false) })
        {
            var tokens = Run(vit, images, new ProbeHooks { Prompts = value }).Tokens;  // one prompt: T = 1 + 1 + N
            var promptOut = tokens.narrow(1, 1, 1);
            var patchOut = tokens.narrow(1, 2 + patch, 1);
            if (same) AssertClose(patchOut, promptOut, 1e-5);
            else AssertDiffer(patchOut, promptOut);
        }
    }

    [Fact]
    public void Deep_prompts_replace_the_previous_prompt_outputs_rather_than_accumulate()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var prompts = RandomPrompts();
        var shallow = new ProbeHooks { Prompts = prompts, Capture = { 0, 1 } };
        var deep = new ProbeHooks { Prompts = prompts, DeepPrompts = { [1] = prompts }, Capture = { 0, 1 } };
        var once = Run(vit, images, shallow);
        var everyLayer = Run(vit, images, deep);

        var expanded = prompts.expand(2, P, Small.Dim);
        AssertBitwiseEqual(expanded, PromptTokens.Slots(deep.Captured[1].Input, P));
        AssertDiffer(expanded, PromptTokens.Slots(shallow.Captured[1].Input, P));
        // Outside the prompt slots the replacement changes nothing before block 1.
        AssertBitwiseEqual(PromptTokens.Patches(shallow.Captured[1].Input, P), PromptTokens.Patches(deep.Captured[1].Input, P));
        AssertDiffer(once.Pooled, everyLayer.Pooled);
    }

    [Fact]
    public void After_block_mixing_gates_the_prompt_slots()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var prompts = RandomPrompts();
        ProbeHooks Gated(double? g)
        {
            var hooks = new ProbeHooks { Prompts = prompts, Capture = { 1 } };
            if (g is { } gate) hooks.Gates[0] = gate;
            return hooks;
        }
        Tensor BlockOneInput(double? g)
        {
            var hooks = Gated(g);
            Run(vit, images, hooks);
            return hooks.Captured[1].Input;                                     // block 0's output, after the hook
        }
        var open = BlockOneInput(null);
        var closed = BlockOneInput(0);
        var quarter = BlockOneInput(0.25);

        AssertBitwiseEqual(prompts.expand(2, P, Small.Dim), PromptTokens.Slots(closed, P));   // g = 0 keeps the input
        AssertBitwiseEqual(PromptTokens.Patches(open, P), PromptTokens.Patches(closed, P));
        AssertBitwiseEqual(open.select(1, 0), closed.select(1, 0));
        using (no_grad())
            AssertClose(PromptTokens.Slots(open, P).mul(0.25).add(prompts.mul(0.75)), PromptTokens.Slots(quarter, P), 1e-6);
        AssertBitwiseEqual(open, BlockOneInput(1));
    }

    [Fact]
    public void A_temperature_of_one_equals_none_and_two_does_not()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var plain = Run(vit, images, new ProbeHooks { Prompts = RandomPrompts() });
        var one = new ProbeHooks { Prompts = RandomPrompts(), Temperatures = { [0] = tensor(1f), [1] = tensor(1f) } };
        var two = new ProbeHooks { Prompts = RandomPrompts(), Temperatures = { [1] = tensor(2f) } };
        AssertBitwiseEqual(plain.Tokens, Run(vit, images, one).Tokens);
        AssertDiffer(plain.Tokens, Run(vit, images, two).Tokens);
    }

    [Fact]
    public void A_very_large_temperature_makes_attention_uniform()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var probe = new ProbeHooks { Temperatures = { [0] = tensor(1e8f) }, Capture = { 0, 1 } };
        Run(vit, images, probe);
        var block = vit.blocks[0];
        var x = probe.Captured[0].Input;
        using var _ = no_grad();

        // Uniform weights: every token's attention output is the mean of all tokens' values, in every head.
        var values = LinearByHand(LayerNormByHand(x, block.norm1), block.attn.qkv, firstRow: 2 * Small.Dim, rows: Small.Dim);
        var uniform = values.mean([1], keepdim: true).expand(values.shape);
        AssertClose(uniform, probe.Captured[0].AttentionOutput, 1e-5);

        var h = x.add(LinearByHand(uniform, block.attn.proj));
        AssertClose(h.add(MlpByHand(block, h)), probe.Captured[1].Input, 1e-4);
    }

    [Fact]
    public void Captured_features_match_the_blocks_weights()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var probe = new ProbeHooks { Prompts = RandomPrompts(), Capture = { 1 } };
        var trace = Run(vit, Images(), probe);
        var block = vit.blocks[1];
        var features = probe.Captured[1];
        var x = features.Input;
        using var _ = no_grad();

        Assert.Equal([2L, T, Small.Dim], x.shape);
        // Query = LN1(x)·W_Qᵀ + b_Q with W_Q the first D rows of the fused qkv weight.
        AssertClose(LinearByHand(LayerNormByHand(x, block.norm1), block.attn.qkv, 0, Small.Dim), features.Query, 1e-5);
        // proj(AttentionOutput) + x is the residual stream the MLP adds to: the block's output is h + MLP(LN2(h)).
        Assert.Equal([2L, T, Small.Dim], features.AttentionOutput.shape);
        var h = block.attn.proj.call(features.AttentionOutput).add(x);
        AssertClose(h.add(MlpByHand(block, h)), trace.Tokens, 1e-5);
        Assert.Equal(new[] { 1 }, probe.Captured.Keys);
    }

    [Fact]
    public void A_custom_pool_replaces_the_cls_read_out()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var mean = Run(vit, images, new MeanPoolingProbe { Prompts = RandomPrompts() });
        var cls = Run(vit, images, new ProbeHooks { Prompts = RandomPrompts() });
        using var _ = no_grad();

        AssertBitwiseEqual(cls.Tokens, mean.Tokens);
        var normed = LayerNormByHand(mean.Tokens, vit.norm);
        Assert.Equal([2L, Small.Dim], mean.Pooled.shape);
        AssertClose(normed.narrow(1, 1, T - 1).mean([1]), mean.Pooled, 1e-5);     // prompts and patches, not CLS
        AssertClose(normed.select(1, 0), cls.Pooled, 1e-5);
    }

    [Fact]
    public void Gradients_reach_the_prompts_temperature_and_key_value_prompts_but_not_the_frozen_backbone()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        foreach (var p in vit.parameters()) p.requires_grad = false;
        using var prompts = new Parameter(RandomPrompts(1));
        using var deep = new Parameter(RandomPrompts(2));
        using var temperature = new Parameter(tensor(1.5f));
        manual_seed(4);
        using var keys = new Parameter(randn(1, 3, 2, Small.Dim / 3));
        using var values = new Parameter(randn(1, 3, 2, Small.Dim / 3));
        var hooks = new ProbeHooks
        {
            Prompts = prompts, DeepPrompts = { [1] = deep }, Temperatures = { [1] = temperature }, KeyValuePrompts = { [0] = (keys, values) },
        };

        var trace = vit.Forward(Images(), hooks);
        var loss = trace.Pooled.pow(2).sum();
        loss.backward();

        foreach (var p in new Tensor[] { prompts, deep, temperature, keys, values })
        {
            using var grad = p.grad;
            Assert.NotNull(grad);
            Assert.True(grad.abs().sum().ToDouble() > 0, "a zero gradient");
        }
        Assert.All(vit.named_parameters(), e =>
        {
            Assert.False(e.parameter.requires_grad, e.name);
            Assert.Null(e.parameter.grad);
        });
    }

    [Fact]
    public void A_forward_pass_leaves_only_its_results_alive_whatever_the_depth()
    {
        // Every block's intermediates, and its input once the next tokens exist, are released as the pass goes, so the
        // tensors alive afterwards do not grow with depth (before: a dozen per block until the step's scope closed).
        var alive = new List<int>();
        foreach (var depth in new[] { 2, 6 })
        {
            manual_seed(3);
            using var vit = new VisionTransformer(Small with { Depth = depth });
            using var images = randn(2, Small.Channels, Small.ImageSize, Small.ImageSize);
            using var scope = NewDisposeScope();
            var trace = vit.Forward(images, NoHooks.Instance);
            alive.Add(scope.DisposablesCount);
            Assert.False(trace.Tokens.IsInvalid);
        }
        Assert.Equal(alive[0], alive[1]);
        Assert.InRange(alive[0], 2, 3); // the last tokens, the pooled feature (and the final norm it was selected from)
    }
}
