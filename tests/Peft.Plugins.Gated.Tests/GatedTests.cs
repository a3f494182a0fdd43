using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Tests.Shared;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Plugins.Gated.Tests;

public class GatedTests
{
    [Fact]
    public void Trainable_count_is_the_papers_for_cub()
    {
        // p·768 + 11 gates + 12 temperatures + 769·C; CUB with p = 100, C = 200: 230,623.
        Assert.Equal(230_623, MethodTestSupport.CountOnVitB16(b => new GatedMethod(b, 200, new GatedOptions { PromptTokens = 100 })));
        Assert.Equal(10 * 768 + 11 + 12 + 769 * 100, MethodTestSupport.CountOnVitB16(b => new GatedMethod(b, 100, new GatedOptions())));
    }

    [Fact]
    public void Gates_start_almost_closed_and_temperatures_at_one()
    {
        using var method = new GatedMethod(new SpecOnlyBackbone(VitSpec.Preset("vit-b16")), 10, new GatedOptions { GateInit = 5 });
        Assert.All(method.gate_logit.data<float>().ToArray(), g => Assert.Equal(-5f, g));
        Assert.Equal(11, method.gate_logit.numel());
        using var gates = nn.functional.sigmoid(method.gate_logit);
        Assert.Equal(0.006692851, gates.data<float>().ToArray()[0], 6);
        Assert.All(method.temp.data<float>().ToArray(), t => Assert.Equal(1f, t));
    }

    [Theory]
    [InlineData(GatedReadout.Cls, 0.0)]
    [InlineData(GatedReadout.Mean, 0.0)]
    [InlineData(GatedReadout.Cls, 0.3)] // the reference's per-sample prompt masks, replayed
    public void Logits_loss_and_gradients_match_the_pytorch_reference(GatedReadout readout, double promptDropout)
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new GatedMethod(vit, 5, new GatedOptions { PromptTokens = 4, PromptDropout = promptDropout, Readout = readout });
        MethodTestSupport.AssertMatchesReference($"gated_{readout.ToString().ToLowerInvariant()}{(promptDropout > 0 ? "_dropout" : "")}_reference.npz", vit, method);
    }

    [Fact]
    public void Open_gates_and_unit_temperatures_equal_vpt_shallow()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new GatedMethod(vit, 5, new GatedOptions { PromptTokens = 4, PromptDropout = 0 });
        using (no_grad()) method.gate_logit.fill_(100); // sigmoid(100) is exactly 1 in float32
        manual_seed(5);
        using var scope = NewDisposeScope();
        var images = randn(2, 3, 32, 32);
        var gated = vit.Forward(images, method).Pooled;

        // VPT-shallow by hand: insert the same prompts once, run the plain blocks, CLS after the norm.
        var x = PromptTokens.Insert(vit.Embed(images), PromptTokens.ExpandToBatch(method.prompt_embeddings, 2));
        for (var i = 0; i < vit.Spec.Depth; i++) x = vit.Block(i, x);
        var shallow = vit.FinalNorm(x).select(1, 0);
        Assert.True(gated.Equals(shallow));

        // Closed gates keep the input prompts: after block 0 the prompt slots still hold the prompts.
        using (no_grad()) method.gate_logit.fill_(-100);
        var inserted = method.AfterEmbedding(vit.Embed(images));
        var mixed = method.AfterBlock(0, inserted, vit.Block(0, inserted, method));
        Assert.True(PromptTokens.Slots(mixed, 4).Equals(PromptTokens.Slots(inserted, 4)));
    }

    [Fact]
    public void Temperatures_are_projected_into_range_after_each_step()
    {
        using var method = new GatedMethod(new SpecOnlyBackbone(VitSpec.Preset("vit-b16")), 10, new GatedOptions());
        using (no_grad()) method.temp.copy_(tensor(new float[] { -3, 0.001f, 0.5f, 20, 10, 1, 2, 3, 4, 5, 6, 7 }));
        method.AfterOptimizerStep();
        Assert.Equal(new float[] { 0.01f, 0.01f, 0.5f, 10, 10, 1, 2, 3, 4, 5, 6, 7 }, method.temp.data<float>().ToArray());
        Assert.True(method.temp.requires_grad);
    }

    [Fact]
    public void Readout_auto_uses_the_mean_for_mae_backbones()
    {
        using var vit = MethodTestSupport.ReferenceVit(BackboneKind.Mae);
        using var method = new GatedMethod(vit, 5, new GatedOptions { PromptTokens = 4 });
        using var scope = NewDisposeScope();
        manual_seed(2);
        var tokens = randn(2, 21, 48);
        var expected = vit.FinalNorm(tokens.narrow(1, 1, 20).mean([1]));
        Assert.True(method.Pool(tokens, vit).Equals(expected));
    }

    [Fact]
    public void Twenty_sgd_steps_reduce_the_loss()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new GatedMethod(vit, 2, new GatedOptions { PromptTokens = 2, PromptDropout = 0, GateInit = 1 });
        manual_seed(8);
        using var images = randn(8, 3, 32, 32);
        using var labels = tensor(new long[] { 0, 1, 0, 1, 0, 1, 0, 1 });
        using var optimizer = optim.SGD(method.parameters(), 0.05, 0.9);
        double First() => Step(vit, method, images, labels, optimizer);
        var first = First();
        var last = first;
        for (var i = 0; i < 19; i++) last = Step(vit, method, images, labels, optimizer);
        Assert.True(last < first * 0.5, $"loss {first} → {last}");
    }

    private static double Step(IVisionBackbone vit, GatedMethod method, Tensor images, Tensor labels, optim.Optimizer optimizer)
    {
        using var scope = NewDisposeScope();
        var loss = nn.functional.cross_entropy(method.Head(vit.Forward(images, method).Pooled), labels);
        loss.backward();
        optimizer.step();
        method.AfterOptimizerStep();
        optimizer.zero_grad();
        return loss.item<float>();
    }

    [Fact]
    public void Every_sample_draws_its_own_prompt_mask()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new GatedMethod(vit, 5, new GatedOptions { PromptTokens = 4, PromptDropout = 0.5 });
        using var scope = NewDisposeScope();
        manual_seed(9);
        method.train();
        var kept = PromptTokens.Slots(method.AfterEmbedding(vit.Embed(randn(2, 3, 32, 32))), 4).ne(0);
        Assert.False(kept[0].Equals(kept[1]), "both samples got the same prompt dropout mask");
    }
}
