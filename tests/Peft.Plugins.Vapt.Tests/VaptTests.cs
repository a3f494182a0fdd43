using Peft.Abstractions.Backbone;
using Peft.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Plugins.Vapt.Tests;

public class VaptTests
{
    [Theory]
    [InlineData(10, 55_608)]
    [InlineData(50, 161_128)]
    public void Trainable_count_without_the_head_is_the_official_codes(int prompts, long expected)
    {
        // 768·p + 11·(1540 + 170·p) + 12,288 (vapt_davpt.md §1c), plus the head 769·C.
        var withHead = MethodTestSupport.CountOnVitB16(b => new VaptMethod(b, 100, new VaptOptions { PromptTokens = prompts }));
        Assert.Equal(768L * prompts + 11 * (1540 + 170L * prompts) + 12_288, expected);
        Assert.Equal(expected + 769 * 100, withHead);
    }

    [Theory]
    [InlineData(0.0, 0.0, 0.0, "vapt_reference.npz")]
    [InlineData(0.3, 0.2, 0.25, "vapt_dropout_reference.npz")]
    public void Logits_loss_and_gradients_match_the_pytorch_reference(double prompt, double conv, double mlp, string fixture)
    {
        // With dropout on, the reference's masks are replayed: prompt dropout on the static prompts, then per generated block
        // Dropout2d on the convolution's channels and dropout after the projector's ReLU, in that order.
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new VaptMethod(vit, 5, new VaptOptions
        {
            PromptTokens = 3, KernelSize = 2, BottleneckRank = 4, PromptDropout = prompt, ConvDropout = conv, MlpDropout = mlp,
        });
        MethodTestSupport.AssertMatchesReference(fixture, vit, method);
    }

    [Fact]
    public void Adaptive_prompts_are_exactly_zero_at_init_and_then_depend_on_the_input()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new VaptMethod(vit, 5, new VaptOptions { PromptTokens = 3 });
        method.eval();
        using var scope = NewDisposeScope();
        manual_seed(6);
        var x = vit.Block(0, method.AfterEmbedding(vit.Embed(randn(2, 3, 32, 32))));
        var replaced = method.BeforeBlock(1, x);
        Assert.Equal(0.0, PromptTokens.Slots(replaced, 3).abs().max().item<float>());
        Assert.True(PromptTokens.Patches(replaced, 3).Equals(PromptTokens.Patches(x, 3)));
        Assert.True(replaced.narrow(1, 0, 1).Equals(x.narrow(1, 0, 1)));

        using (no_grad()) method.generators[0].token_proj.weight.normal_(0, 0.1);
        var a = PromptTokens.Slots(method.BeforeBlock(1, x), 3);
        var other = vit.Block(0, method.AfterEmbedding(vit.Embed(randn(2, 3, 32, 32))));
        var b = PromptTokens.Slots(method.BeforeBlock(1, other), 3);
        Assert.True(a.abs().max().item<float>() > 0);
        Assert.False(a.allclose(b));
    }

    [Fact]
    public void The_shared_kernel_has_k_squared_parameters_and_the_generator_sees_only_patches()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new VaptMethod(vit, 5, new VaptOptions { PromptTokens = 3 });
        Assert.Equal(new long[] { 1, 1, 2, 2 }, method.generators[0].kernel.shape);
        Assert.Equal(new long[] { 3, 9 }, method.generators[0].token_proj.weight.shape); // (4−2+1)² = 9 positions
        method.eval();
        using (no_grad()) method.generators[0].token_proj.weight.normal_(0, 0.1);
        using var scope = NewDisposeScope();
        manual_seed(7);
        var x = vit.Block(0, method.AfterEmbedding(vit.Embed(randn(2, 3, 32, 32))));
        // Changing the CLS token and the old prompt slots leaves the generated prompts unchanged.
        var changed = cat([x.narrow(1, 0, 4).mul(3.0), x.narrow(1, 4, 16)], 1);
        Assert.True(PromptTokens.Slots(method.BeforeBlock(1, x), 3).Equals(PromptTokens.Slots(method.BeforeBlock(1, changed), 3)));
    }

    [Fact]
    public void The_read_out_follows_the_backbone_kind() =>
        MethodTestSupport.AssertReadoutFollowsBackboneKind(v => new VaptMethod(v, 5, new VaptOptions { PromptTokens = 3 }));
}
