using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Tests.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Plugins.DaVpt.Tests;

public class DaVptTests
{
    [Fact]
    public void Trainable_counts_follow_the_layer_layout_on_vit_b16()
    {
        // Default: guided block 11 with M = 10 prompts, the 11 others with M_o = 20, plus the head.
        Assert.Equal(11 * 20 * 768 + 10 * 768 + 769 * 100,
            MethodTestSupport.CountOnVitB16(b => new DaVptMethod(b, 100, new DaVptOptions(), seed: 1)));
        // C ≤ M: one prompt per class in the guided block.
        Assert.Equal(11 * 20 * 768 + 5 * 768 + 769 * 5,
            MethodTestSupport.CountOnVitB16(b => new DaVptMethod(b, 5, new DaVptOptions(), seed: 1)));
        // CUB's layout: guided {10, 11} with 10 prompts, M_o = 10 elsewhere.
        Assert.Equal(10 * 10 * 768 + 2 * 10 * 768 + 769 * 200,
            MethodTestSupport.CountOnVitB16(b => new DaVptMethod(b, 200, new DaVptOptions { GuidedLayers = [10, 11], OtherPrompts = 10 }, seed: 1)));
    }

    public static TheoryData<TokenAnchor> Anchors => new() { TokenAnchor.Attention, TokenAnchor.MeanPatch };

    [Theory]
    [InlineData(TokenAnchor.Attention, 0.0)]
    [InlineData(TokenAnchor.MeanPatch, 0.0)]
    [InlineData(TokenAnchor.Attention, 0.3)] // every block's prompts dropped per sample (replayed masks); proxies are the undropped prompts
    public void Logits_losses_and_gradients_match_the_pytorch_reference(TokenAnchor anchor, double promptDropout)
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new DaVptMethod(vit, 5, new DaVptOptions
        {
            GuidedLayers = [2], GuidedPrompts = 3, OtherPrompts = 2, Alpha = 32, Delta = 0.1, Rho = 2, Beta = 0.5, Lambda = 0.3,
            TokenAnchor = anchor, PromptDropout = promptDropout,
        }, seed: 1);
        MethodTestSupport.AssertMatchesReference(
            $"davpt_{anchor.ToString().ToLowerInvariant()}{(promptDropout > 0 ? "_dropout" : "")}_reference.npz", vit, method);
    }

    [Theory]
    [MemberData(nameof(Anchors))]
    public void Davpt_plus_logits_losses_and_gradients_match_the_pytorch_reference(TokenAnchor anchor)
    {
        // DA-VPT+ (§2a): Δ_K, Δ_V on every block's fused qkv bias (b_Q frozen) and the CLS token (a backbone tensor)
        // trained; the fixture's deltas are non-zero and its CLS token is not the pretrained one.
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new DaVptMethod(vit, 5, new DaVptOptions
        {
            GuidedLayers = [2], GuidedPrompts = 3, OtherPrompts = 2, Alpha = 32, Delta = 0.1, Rho = 2, Beta = 0.5, Lambda = 0.3,
            TokenAnchor = anchor,
        }, seed: 1, plus: true);
        Assert.Equal(["cls_token"], method.BackboneTrainables);
        MethodTestSupport.AssertMatchesReference($"davpt_plus_{anchor.ToString().ToLowerInvariant()}_reference.npz", vit, method);
        Assert.False(vit.cls_token.requires_grad); // restored: the backbone stays frozen outside the check
    }

    [Fact]
    public void Proxy_anchor_with_orthogonal_anchors_gives_the_closed_form()
    {
        // All cosines 0 and ρ = 1: a proxy's positive term is log(1 + n⁺·e^{3.2}), its negative term log(1 + n⁻·e^{3.2}).
        using var proxies = tensor(new float[] { 1, 0, 0, 0, 0, 1, 0, 0 }, 2, 4);
        using var anchors = tensor(new float[] { 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0 }, 3, 4);
        using var mapped = tensor(new long[] { 0, 0, 1 });
        using var loss = ProxyAnchor.Loss(anchors, proxies, mapped, alpha: 32, delta: 0.1);
        var e = Math.Exp(3.2);
        var expected = (Math.Log(1 + 2 * e) + Math.Log(1 + e)) / 2 + (Math.Log(1 + e) + Math.Log(1 + 2 * e)) / 2;
        Assert.Equal(expected, loss.item<float>(), 4);
    }

    /// <summary>The loss's formula evaluated in float64 with plain loops, each log(1 + Σ e^x) as max + log(e^-max + Σ e^(x - max)).</summary>
    private static double ProxyAnchorInDoubles(float[,] anchors, float[,] proxies, long[] mapped, double alpha, double delta, bool byPositives)
    {
        int b = anchors.GetLength(0), m = proxies.GetLength(0), d = anchors.GetLength(1);
        static double Log1pSumExp(List<double> xs)
        {
            var max = Math.Max(0, xs.DefaultIfEmpty(0).Max());
            return max + Math.Log(Math.Exp(-max) + xs.Sum(x => Math.Exp(x - max)));
        }
        double pos = 0, neg = 0;
        var withPositives = 0;
        for (var j = 0; j < m; j++)
        {
            var p = new List<double>();
            var n = new List<double>();
            for (var i = 0; i < b; i++)
            {
                double sij = 0;
                for (var k = 0; k < d; k++) sij += (double)anchors[i, k] * proxies[j, k];
                if (mapped[i] == j) p.Add(-alpha * (sij - delta)); else n.Add(alpha * (sij + delta));
            }
            if (p.Count > 0) withPositives++;
            pos += Log1pSumExp(p);
            neg += Log1pSumExp(n);
        }
        return pos / (byPositives ? Math.Max(1, withPositives) : m) + neg / m;
    }

    private static Tensor Rows(float[,] values) =>
        tensor(values.Cast<float>().ToArray(), [values.GetLength(0), values.GetLength(1)]);

    [Theory]
    [InlineData(60.0)]   // the released configs' ρ for Cars and NABirds: e^{α(s ± δ)} overflows float32 at s ≈ 2.7
    [InlineData(1000.0)]
    public void Proxy_anchor_is_finite_and_exact_at_large_proxy_scales(double rho)
    {
        var random = new Random(7);
        var anchors = new float[6, 8];
        var proxies = new float[3, 8];
        foreach (var array in new[] { anchors, proxies })
            for (var i = 0; i < array.GetLength(0); i++)
            {
                var norm = 0.0;
                for (var k = 0; k < 8; k++) norm += Math.Pow(array[i, k] = (float)(random.NextDouble() * 2 - 1), 2);
                for (var k = 0; k < 8; k++) array[i, k] /= (float)Math.Sqrt(norm) / (array == proxies ? (float)rho : 1f);
            }
        long[] mapped = [0, 0, 1, 1, 2, 2];
        foreach (var normaliser in new[] { PositiveNormaliser.ProxiesWithPositives, PositiveNormaliser.AllProxies })
        {
            using var a = Rows(anchors).requires_grad_();
            using var p = Rows(proxies).requires_grad_();
            using var loss = ProxyAnchor.Loss(a, p, tensor(mapped), alpha: 32, delta: 0.1, normaliser);
            loss.backward();
            var expected = ProxyAnchorInDoubles(anchors, proxies, mapped, 32, 0.1, normaliser == PositiveNormaliser.ProxiesWithPositives);
            Assert.True(double.IsFinite(loss.item<float>()), $"ρ = {rho}: loss {loss.item<float>()}");
            Assert.Equal(expected, loss.item<float>(), expected * 1e-5);
            Assert.True(a.grad!.isfinite().all().item<bool>() && p.grad!.isfinite().all().item<bool>(), "gradients finite");
        }
    }

    [Fact]
    public void The_positive_term_is_averaged_over_proxies_with_positives_unless_the_released_normaliser_is_chosen()
    {
        // Four proxies, positives for two of them only: |P⁺| = 2 ≠ M = 4.
        var anchors = new float[,] { { 1, 0, 0, 0 }, { 0.8f, 0.6f, 0, 0 }, { 0, 0, 1, 0 } };
        var proxies = new float[,] { { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } };
        long[] mapped = [1, 1, 3]; // anchors far from their proxies: positive terms near log(1 + e^3.2)
        using var paper = ProxyAnchor.Loss(Rows(anchors), Rows(proxies), tensor(mapped), 32, 0.1, PositiveNormaliser.ProxiesWithPositives);
        using var released = ProxyAnchor.Loss(Rows(anchors), Rows(proxies), tensor(mapped), 32, 0.1, PositiveNormaliser.AllProxies);
        Assert.Equal(ProxyAnchorInDoubles(anchors, proxies, mapped, 32, 0.1, byPositives: true), paper.item<float>(), 4);
        Assert.Equal(ProxyAnchorInDoubles(anchors, proxies, mapped, 32, 0.1, byPositives: false), released.item<float>(), 4);
        Assert.True(paper.item<float>() > released.item<float>() + 0.1, $"paper {paper.item<float>()} vs released {released.item<float>()}");
        Assert.Equal(PositiveNormaliser.ProxiesWithPositives, new DaVptOptions().PositiveNormaliser);
    }

    [Fact]
    public void Cosine_kmeans_groups_rows_by_direction()
    {
        using var rows = tensor(new float[] { 1, 0.1f, 0, 2, 0.3f, 0, 0, 1, 0.1f, 0, 3, 0.2f, 0.1f, 0, 1 }, 5, 3);
        using var initial = tensor(new float[] { 1, 0, 0, 0, 1, 0, 0, 0, 1 }, 3, 3);
        var (assignment, centroids) = CosineKMeans.Fit(rows, initial, 20);
        using (centroids)
            Assert.Equal(new long[] { 0, 0, 1, 1, 2 }, assignment);
    }

    [Fact]
    public void Epoch_end_reclusters_classes_from_their_running_mean_features()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new DaVptMethod(vit, 5, new DaVptOptions { GuidedLayers = [2], GuidedPrompts = 2, OtherPrompts = 1 }, seed: 3);
        Assert.Equal(BatchSampling.ClassBalanced, method.Sampling);
        using (no_grad())
        {
            // Classes 0 and 3 point one way, 1, 2 and 4 another (48-D zero-mean features, so the row
            // LayerNorm keeps their directions), each seen twice.
            var a = cat([ones(24), ones(24).neg()]);
            var b = tensor(Enumerable.Range(0, 48).Select(i => i % 2 == 0 ? 1f : -1f).ToArray());
            foreach (var (c, v) in new[] { (0, a), (1, b), (2, b), (3, a), (4, b) })
                method.class_sums.select(0, c).copy_(v.mul(2.0).add(randn(48).mul(0.01)));
            method.class_counts.fill_(2);
            method.centroids.copy_(stack([a, b]));
        }
        method.OnEpochEnd(new EpochContext(0, vit, () => []));
        var map = method.class_to_prompt.data<long>().ToArray();
        Assert.Equal(map[0], map[3]);
        Assert.Equal(map[1], map[2]);
        Assert.Equal(map[1], map[4]);
        Assert.NotEqual(map[0], map[1]);
        Assert.Equal(0.0, method.class_counts.sum().item<float>()); // statistics restart every epoch
    }

    [Fact]
    public void Deep_prompts_are_replaced_per_block_with_their_own_counts()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new DaVptMethod(vit, 5, new DaVptOptions { GuidedLayers = [2], GuidedPrompts = 3, OtherPrompts = 2 }, seed: 1);
        Assert.Equal([2, 2, 3], method.PromptCounts);
        using var scope = NewDisposeScope();
        manual_seed(1);
        var images = randn(2, 3, 32, 32);
        var x = vit.Block(0, method.AfterEmbedding(vit.Embed(images)));
        Assert.Equal(1 + 2 + 16, x.size(1));
        var into2 = method.BeforeBlock(2, vit.Block(1, method.BeforeBlock(1, x)));
        Assert.Equal(1 + 3 + 16, into2.size(1));
        Assert.True(PromptTokens.Slots(into2, 3).Equals(method.named_parameters().Single(p => p.name == "prompt_embeddings_2").parameter.expand(2, 3, 48)));
    }

    [Fact]
    public void Davpt_plus_tunes_key_and_value_biases_and_the_cls_token()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        var options = new DaVptOptions { GuidedLayers = [2], GuidedPrompts = 3, OtherPrompts = 2 };
        using var plus = new DaVptMethod(vit, 5, options, seed: 1, plus: true);
        using var plain = new DaVptMethod(vit, 5, options, seed: 1);
        var (d, depth) = (48L, 3L);
        var prompts = (2 + 2 + 3) * d;
        Assert.Equal(prompts + (d + 1) * 5, Trainables.Count(Trainables.Of(plain, vit)));
        // + b_K and b_V of every block + the CLS token.
        Assert.Equal(prompts + (d + 1) * 5 + depth * 2 * d + d, Trainables.Count(Trainables.Of(plus, vit)));
        Assert.Equal(["cls_token"], plus.BackboneTrainables);

        var groups = plus.ParameterGroups(new Abstractions.Options.TrainerOptions { WeightDecay = 0.05, HeadWeightDecay = 3 }, vit);
        Assert.Contains(groups.Single(g => g.Name == "no_decay").Parameters, p => p.Name == "key_bias_0");
        Assert.Contains(groups.Single(g => g.Name == "decay").Parameters, p => p.Name == "backbone.cls_token");
        Assert.Equal(3, groups.Single(g => g.Name == "head_weight").WeightDecay);

        // The deltas act exactly as tuned key/value biases; the query third stays as pretrained.
        using (no_grad())
        {
            foreach (var (name, p) in plain.named_parameters()) plus.named_parameters().Single(q => q.name == name).parameter.copy_(p);
            foreach (var (name, p) in plus.named_parameters().Where(p => p.name.Contains("_bias_"))) p.normal_(0, 0.5);
        }
        using var scope = NewDisposeScope();
        manual_seed(2);
        var images = randn(2, 3, 32, 32);
        var withDelta = vit.Forward(images, plus).Pooled;
        // The same forward with the deltas written into the backbone's fused qkv bias (rows q, k, v), b_Q untouched.
        Parameter Tuned(string name) => plus.named_parameters().Single(p => p.name == name).parameter;
        using (no_grad())
            for (var l = 0; l < depth; l++)
            {
                vit.blocks[l].attn.qkv.bias!.narrow(0, d, d).add_(Tuned($"key_bias_{l}"));
                vit.blocks[l].attn.qkv.bias!.narrow(0, 2 * d, d).add_(Tuned($"value_bias_{l}"));
            }
        var tuned = vit.Forward(images, plain).Pooled;
        Assert.True(withDelta.allclose(tuned, 1e-5, 1e-5));

        var labels = tensor(new long[] { 0, 1 });
        nn.functional.cross_entropy(plus.Head(vit.Forward(images, plus).Pooled), labels).backward();
        Assert.NotNull(plus.named_parameters().Single(p => p.name == "value_bias_1").parameter.grad);
    }

    [Fact]
    public void The_read_out_follows_the_backbone_kind() =>
        MethodTestSupport.AssertReadoutFollowsBackboneKind(v => new DaVptMethod(v, 5, new DaVptOptions(), seed: 1));

    [Fact]
    public void Prompts_start_uniform_within_a_group_xavier_bound_over_eight_on_vit_b16()
    {
        // ViT-B/16, defaults: M = 10 prompts in the guided block 11, M_o = 20 in the 11 others. Bounds by hand:
        // √(6 / ((10 + 1)·768)) / 8 = 0.0033313 and √(6 / ((20 + 11)·768)) / 8 = 0.0019844.
        var backbone = new SpecOnlyBackbone(VitSpec.Preset("vit-b16"));
        using var method = new DaVptMethod(backbone, 100, new DaVptOptions(), seed: 1);
        var prompts = method.named_parameters().Where(p => p.name.StartsWith("prompt_embeddings_", StringComparison.Ordinal)).ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(12, prompts.Count);
        foreach (var (name, p) in prompts)
        {
            var guided = name == "prompt_embeddings_11";
            var bound = guided ? 0.0033313 : 0.0019844;
            Assert.Equal(guided ? 10 : 20, p.size(1));
            var max = p.abs().max().item<float>();
            // 7,680 or 15,360 uniform draws come within 0.1 % of the bound.
            Assert.InRange(max, 0.999 * bound, 1.0001 * bound);
            Assert.InRange(p.mean().item<float>(), -0.02 * bound, 0.02 * bound);
        }
    }

    [Fact]
    public void The_first_mapping_clusters_class_means_of_the_frozen_features()
    {
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = new DaVptMethod(vit, 4, new DaVptOptions { GuidedLayers = [2], GuidedPrompts = 2, OtherPrompts = 1, ClassMeanSamples = 2 }, seed: 3);
        Assert.Equal(new long[] { 0, 1, 0, 1 }, method.class_to_prompt.data<long>().ToArray()); // before: c mod M
        // Classes 0 and 1 show one image, 2 and 3 another: their frozen features' class means pair them {0, 1}, {2, 3}.
        manual_seed(11);
        using var a = randn(3, 32, 32);
        using var b = randn(3, 32, 32).neg();
        (Tensor, Tensor) Batch() => (stack([a, a, b, b, a, a, b, b]), tensor(new long[] { 0, 1, 2, 3, 0, 1, 2, 3 }));
        method.OnTrainingStart(new EpochContext(0, vit, () => [Batch(), Batch()]));
        var map = method.class_to_prompt.data<long>().ToArray();
        Assert.Equal(map[0], map[1]);
        Assert.Equal(map[2], map[3]);
        Assert.NotEqual(map[0], map[2]);
    }
}
