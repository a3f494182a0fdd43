using Peft.Abstractions.Backbone;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Peft.Vision.Tests.TestSupport;

namespace Peft.Vision.Tests;

/// <summary>
/// The attention seam (<see cref="IAttentionHooks"/>): q, k, v after the projection, the logits when asked for, the
/// output before the projection, checked against hand computations from the block's weights.
/// </summary>
public class AttentionHookTests
{
    private const int Heads = 3;
    private static readonly long HeadDim = Small.Dim / Heads;
    private static readonly long T = 1 + Small.NumPatches;

    private static ForwardTrace Run(VisionTransformer vit, Tensor images, IBackboneHooks hooks)
    {
        using var _ = no_grad();
        return vit.Forward(images, hooks);
    }

    private static Tensor LayerNormByHand(Tensor x, LayerNorm ln)
    {
        var centered = x.sub(x.mean([-1], keepdim: true));
        return centered.div(centered.pow(2).mean([-1], keepdim: true).add(ln.eps).sqrt()).mul(ln.weight!).add(ln.bias!);
    }

    /// <summary>(B, T, D) → (B, H, T, D/H), heads as timm splits them.</summary>
    private static Tensor SplitHeads(Tensor x) => x.view(x.size(0), x.size(1), Heads, HeadDim).transpose(1, 2);

    /// <summary>(B, H, T, D/H) → (B, T, D), heads concatenated.</summary>
    private static Tensor MergeHeads(Tensor x) => x.transpose(1, 2).reshape(x.size(0), x.size(2), -1);

    private static Tensor AttentionByHand(QueryKeyValue qkv) =>
        MergeHeads(qkv.Query.matmul(qkv.Key.transpose(-2, -1)).div(Math.Sqrt(HeadDim)).softmax(-1).matmul(qkv.Value));

    [Fact]
    public void The_seam_sees_the_blocks_projected_queries_keys_and_values_split_into_heads()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var probe = new ProbeHooks { Capture = { 1 } };
        Run(vit, Images(), probe);
        var (q, k, v) = probe.CapturedQkv[1];
        using var _ = no_grad();

        var attn = vit.blocks[1].attn;
        var normed = LayerNormByHand(probe.Captured[1].Input, vit.blocks[1].norm1);
        var projected = normed.matmul(attn.qkv.weight.t()).add(attn.qkv.bias!);       // (B, T, 3D): rows q, k, v
        Assert.Equal([2L, Heads, T, HeadDim], q.shape);
        AssertClose(SplitHeads(projected.narrow(2, 0, Small.Dim)), q, 1e-5);
        AssertClose(SplitHeads(projected.narrow(2, Small.Dim, Small.Dim)), k, 1e-5);
        AssertClose(SplitHeads(projected.narrow(2, 2 * Small.Dim, Small.Dim)), v, 1e-5);
        // What the output projection receives is softmax(q·kᵀ/√d_h)·v with the heads concatenated.
        AssertClose(AttentionByHand(probe.CapturedQkv[1]), probe.Captured[1].AttentionOutput, 1e-5);
    }

    [Fact]
    public void Asking_for_the_logits_takes_the_explicit_path_and_changes_nothing_else()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var plain = Run(vit, images, NoHooks.Instance);
        var seen = new List<long[]>();
        var explicitPath = Run(vit, images, new ProbeHooks
        {
            Logits = { [0] = l => { seen.Add(l.shape); return l; }, [1] = l => { seen.Add(l.shape); return l; } },
        });
        Assert.Equal([[2, Heads, T, T], [2, Heads, T, T]], seen);
        AssertClose(plain.Tokens, explicitPath.Tokens, 1e-5);
    }

    [Fact]
    public void A_temperature_on_the_logits_equals_the_same_temperature_on_the_queries()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        var onLogits = Run(vit, images, new ProbeHooks { Logits = { [1] = l => l.div(2.5) } });
        var onQueries = Run(vit, images, new ProbeHooks { Temperatures = { [1] = tensor(2.5f) } });
        AssertClose(onQueries.Tokens, onLogits.Tokens, 1e-5);
        AssertDiffer(Run(vit, images, NoHooks.Instance).Tokens, onLogits.Tokens);
    }

    [Fact]
    public void Masking_every_key_but_cls_gives_every_token_the_cls_value()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        static Tensor OnlyCls(Tensor logits)
        {
            var mask = ones(logits.size(-1), dtype: ScalarType.Bool);
            mask[0] = false;
            return logits.masked_fill(mask, double.NegativeInfinity);
        }
        var probe = new ProbeHooks { Logits = { [0] = OnlyCls }, Capture = { 0 } };
        Run(vit, Images(), probe);
        using var _ = no_grad();
        var clsValue = MergeHeads(probe.CapturedQkv[0].Value.narrow(2, 0, 1));          // (B, 1, D)
        AssertClose(clsValue.expand(2, T, Small.Dim), probe.Captured[0].AttentionOutput, 1e-6);
    }

    [Fact]
    public void Key_value_prompts_lengthen_keys_and_values_but_not_the_sequence()
    {
        using var scope = NewDisposeScope();
        using var vit = RandomVit();
        var images = Images();
        manual_seed(9);
        var (keys, values) = (randn(1, Heads, 4, HeadDim), randn(1, Heads, 4, HeadDim));
        var probe = new ProbeHooks { KeyValuePrompts = { [1] = (keys, values) }, Capture = { 1 } };
        var prefixed = Run(vit, images, probe);
        var (q, k, v) = probe.CapturedQkv[1];
        using var _ = no_grad();

        Assert.Equal([2L, Heads, T, HeadDim], q.shape);                                // the queries are the tokens'
        Assert.Equal([2L, Heads, 4 + T, HeadDim], k.shape);
        AssertBitwiseEqual(keys.expand(2, -1, -1, -1), k.narrow(2, 0, 4));              // prompts first, then the tokens' keys
        AssertBitwiseEqual(values.expand(2, -1, -1, -1), v.narrow(2, 0, 4));
        Assert.Equal([2L, T, Small.Dim], prefixed.Tokens.shape);
        // Every query attends over the 4 prompts and the T tokens.
        AssertClose(AttentionByHand(probe.CapturedQkv[1]), probe.Captured[1].AttentionOutput, 1e-5);
        AssertDiffer(Run(vit, images, NoHooks.Instance).Tokens, prefixed.Tokens);
    }

    [Fact]
    public void Hooks_that_keep_nothing_leave_only_the_results_alive_whatever_the_depth()
    {
        // The attention hooks run inside the block's dispose scope: what they make is released with the block.
        var alive = new List<int>();
        foreach (var depth in new[] { 2, 6 })
        {
            manual_seed(3);
            using var vit = new VisionTransformer(Small with { Depth = depth });
            using var images = randn(2, Small.Channels, Small.ImageSize, Small.ImageSize);
            using var keys = randn(1, Heads, 2, HeadDim);
            var hooks = new ProbeHooks();
            for (var i = 0; i < depth; i++)
            {
                hooks.KeyValuePrompts[i] = (keys, keys);
                hooks.Logits[i] = l => l.mul(0.5);
            }
            using var scope = NewDisposeScope();
            var trace = vit.Forward(images, hooks);
            alive.Add(scope.DisposablesCount);
            Assert.False(trace.Tokens.IsInvalid);
        }
        Assert.Equal(alive[0], alive[1]);
    }
}
