using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Plugins.Vpt.Tests;

public class VptTests
{
    private static long Count(VptOptions options) => MethodTestSupport.CountOnVitB16(b => new VptMethod(b, 100, options));

    [Theory]
    [InlineData(VptMode.Shallow, 10, 10 * 768 + 769 * 100)]
    [InlineData(VptMode.Shallow, 50, 50 * 768 + 769 * 100)]
    [InlineData(VptMode.Deep, 10, 12 * 10 * 768 + 769 * 100)]
    [InlineData(VptMode.Deep, 50, 12 * 50 * 768 + 769 * 100)]
    public void Trainable_counts_on_vit_b16_match_the_paper(VptMode mode, int prompts, long expected) =>
        Assert.Equal(expected, Count(new VptOptions { Mode = mode, PromptTokens = prompts }));

    [Fact]
    public void Projection_stores_prompts_narrow_and_adds_a_linear_map() =>
        // p·k prompts + Linear(k → 768) with bias + head.
        Assert.Equal(10 * 64 + (64 * 768 + 768) + 769 * 100, Count(new VptOptions { Mode = VptMode.Shallow, Projection = 64 }));

    [Fact]
    public void Prompts_start_within_vpts_uniform_bound()
    {
        using var method = new VptMethod(new SpecOnlyBackbone(VitSpec.Preset("vit-b16")), 10, new VptOptions { PromptTokens = 50 });
        Assert.Equal(0.0625, PromptInit.VptUniformBound(16, 768), 12);
        var values = method.deep_prompt_embeddings!.data<float>().ToArray().Concat(method.prompt_embeddings.data<float>().ToArray()).ToArray();
        Assert.All(values, v => Assert.InRange(v, -0.0625f, 0.0625f));
        Assert.True(values.Max() > 0.06f && values.Min() < -0.06f, "uniform over the whole interval");
        Assert.InRange(values.Average(v => (double)v), -0.002, 0.002);
    }

    [Fact]
    public void Prompt_dropout_defaults_to_vpts_recipe_by_mode()
    {
        var backbone = new SpecOnlyBackbone(VitSpec.Preset("vit-b16"));
        using var shallow = new VptMethod(backbone, 10, new VptOptions { Mode = VptMode.Shallow });
        using var deep = new VptMethod(backbone, 10, new VptOptions { Mode = VptMode.Deep });
        using var chosen = new VptMethod(backbone, 10, new VptOptions { Mode = VptMode.Shallow, PromptDropout = 0.3 });
        Assert.Equal(0.0, shallow.prompt_dropout.p);
        Assert.Equal(0.1, deep.prompt_dropout.p);
        Assert.Equal(0.3, chosen.prompt_dropout.p);
    }

    public static TheoryData<VptMode> Modes => new() { VptMode.Shallow, VptMode.Deep };

    [Theory]
    [InlineData(VptMode.Shallow, 0.0)]
    [InlineData(VptMode.Deep, 0.0)]
    [InlineData(VptMode.Shallow, 0.3)]
    [InlineData(VptMode.Deep, 0.3)]
    public void Logits_loss_and_gradients_match_the_pytorch_reference(VptMode mode, double promptDropout)
    {
        // With dropout on, the reference drew one (B, p, D) mask per insertion (1 shallow, L deep) after expanding the
        // prompts to the batch; they are replayed here, so the same samples lose the same prompt elements on both sides.
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new VptMethod(vit, 5, new VptOptions { Mode = mode, PromptTokens = 4, PromptDropout = promptDropout });
        MethodTestSupport.AssertMatchesReference($"vpt_{mode.ToString().ToLowerInvariant()}{(promptDropout > 0 ? "_dropout" : "")}_reference.npz", vit, method);
    }

    [Fact]
    public void Deep_prompts_replace_rather_than_accumulate()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        manual_seed(3);
        using var images = randn(2, 3, 32, 32);
        using var shallow = new VptMethod(vit, 5, new VptOptions { Mode = VptMode.Shallow, PromptTokens = 4, PromptDropout = 0 });
        using var deep = new VptMethod(vit, 5, new VptOptions { Mode = VptMode.Deep, PromptTokens = 4, PromptDropout = 0 });
        using (no_grad())
        {
            // The same prompts at every layer: deep re-inserts them, shallow lets them evolve.
            deep.prompt_embeddings.copy_(shallow.prompt_embeddings);
            for (var i = 0; i < vit.Spec.Depth - 1; i++) deep.deep_prompt_embeddings!.select(0, i).copy_(shallow.prompt_embeddings.squeeze(0));
        }
        using var scope = NewDisposeScope();
        var a = vit.Forward(images, shallow);
        var b = vit.Forward(images, deep);
        Assert.Equal(new long[] { 2, 1 + 4 + 16, 48 }, b.Tokens.shape); // the sequence never grows
        Assert.False(a.Pooled.allclose(b.Pooled, 1e-4, 1e-4));

        // Before block 1 the prompt slots hold exactly the layer's prompts, whatever block 0 wrote there.
        var afterBlock0 = vit.Block(0, deep.AfterEmbedding(vit.Embed(images)));
        var replaced = deep.BeforeBlock(1, afterBlock0);
        Assert.True(PromptTokens.Slots(replaced, 4).Equals(deep.deep_prompt_embeddings!.select(0, 0).unsqueeze(0).expand(2, 4, 48)));
        Assert.True(PromptTokens.Patches(replaced, 4).Equals(PromptTokens.Patches(afterBlock0, 4)));
    }

    [Fact]
    public void Prompts_carry_no_position_embedding_and_dropout_acts_only_in_training()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new VptMethod(vit, 5, new VptOptions { Mode = VptMode.Shallow, PromptTokens = 4, PromptDropout = 0.5 });
        using var scope = NewDisposeScope();
        manual_seed(4);
        var tokens = vit.Embed(randn(2, 3, 32, 32));
        method.eval();
        var inserted = method.AfterEmbedding(tokens);
        Assert.True(PromptTokens.Slots(inserted, 4).Equals(method.prompt_embeddings.expand(2, 4, 48)));
        Assert.True(inserted.narrow(1, 0, 1).Equals(tokens.narrow(1, 0, 1)));
        Assert.True(PromptTokens.Patches(inserted, 4).Equals(tokens.narrow(1, 1, 16)));

        method.train();
        var dropped = PromptTokens.Slots(method.AfterEmbedding(tokens), 4);
        var zeros = dropped.eq(0).sum().item<long>();
        Assert.InRange(zeros, 2 * 4 * 48 / 4, 3 * 2 * 4 * 48 / 4); // about half of 384 elements zeroed
        // Each sample draws its own mask (the official code expands the prompts to the batch before the dropout).
        Assert.False(dropped[0].eq(0).Equals(dropped[1].eq(0)), "both samples got the same prompt dropout mask");
    }

    [Theory]
    [InlineData(VptMode.Shallow, 0)]
    [InlineData(VptMode.Deep, 1)]
    [InlineData(VptMode.Deep, 3)]
    public void Every_sample_draws_its_own_prompt_mask_at_every_insertion(VptMode mode, int block)
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new VptMethod(vit, 5, new VptOptions { Mode = mode, PromptTokens = 4, PromptDropout = 0.5 });
        using var scope = NewDisposeScope();
        manual_seed(9);
        method.train();
        var tokens = vit.Embed(randn(2, 3, 32, 32));
        var inserted = block == 0 ? method.AfterEmbedding(tokens) : method.BeforeBlock(block, method.AfterEmbedding(tokens));
        var kept = PromptTokens.Slots(inserted, 4).ne(0);
        Assert.False(kept[0].Equals(kept[1]), $"block {block}: both samples got the same prompt dropout mask");
    }

    [Fact]
    public void The_read_out_follows_the_backbone_kind() =>
        MethodTestSupport.AssertReadoutFollowsBackboneKind(v => new VptMethod(v, 5, new VptOptions { Mode = VptMode.Deep, PromptTokens = 4 }));
}
