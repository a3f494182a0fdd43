using Peft.Abstractions;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Plugins.DaVpt;

#pragma warning disable IDE1006 // fields are named as the released code's tensors (the adapter file's keys)

/// <summary>
/// DA-VPT (vapt_davpt.md §2a): VPT-deep prompts where the guided blocks' M prompts double as proxies
/// of class clusters. A class → prompt mapping comes from cosine k-means over class-mean features
/// (frozen model first, then re-clustered after every epoch from the current model's running class
/// means, warm-started from the old centroids). Per guided block, Proxy-Anchor losses pull each
/// sample's token anchor and CLS query towards its mapped prompt: total = CE + mean over guided
/// blocks of (β·token term + λ·CLS term).
/// </summary>
public sealed class DaVptMethod : nn.Module, IPeftMethod
{
    private readonly DaVptOptions _options;
    private readonly int[] _counts;
    private readonly HashSet<int> _guided;
    private readonly int _classes;
    private readonly int _proxies;
    private readonly Random _random;
    /// <summary>prompt_embeddings_0 … prompt_embeddings_{L−1}, (1, M_l, D) each (registered under those names).</summary>
    private readonly List<Parameter> _prompts = [];

    public readonly ReplayableDropout prompt_dropout;
    public readonly ClassifierHead head;

    /// <summary>Class → prompt index in the guided blocks (persistent: checkpoints restore it).</summary>
    public readonly Tensor class_to_prompt;

    public readonly Tensor centroids;
    public readonly Tensor class_sums;
    public readonly Tensor class_counts;

    /// <summary>key_bias_l, value_bias_l for every block (DA-VPT+ only; registered under those names).</summary>
    private readonly List<(Parameter Key, Parameter Value)> _keyValueBiases = [];
    private readonly int _heads;

    /// <summary>
    /// What the current forward pass captured at each guided block for <see cref="AuxiliaryLoss"/>: the CLS query and the
    /// token anchor's source. Reset when a pass starts (<see cref="AfterEmbedding"/>); the tensors belong to the pass's
    /// caller's dispose scope.
    /// </summary>
    private readonly Dictionary<int, GuidedFeatures> _captured = [];

    private readonly record struct GuidedFeatures(Tensor? ClsQuery, Tensor? TokenSource);

    /// <param name="plus">DA-VPT+ (§2a): also tune every block's key and value biases and the CLS token.</param>
    public DaVptMethod(IVisionBackbone backbone, int classes, DaVptOptions options, int seed, bool plus = false) : base(nameof(DaVptMethod))
    {
        _options = options;
        var spec = backbone.Spec;
        _classes = classes;
        _random = new Random(seed);
        _guided = options.GuidedLayers.Count > 0 ? [.. options.GuidedLayers] : [spec.Depth - 1];
        if (_guided.Any(l => l < 0 || l >= spec.Depth))
            throw new ArgumentException($"Method:Options:GuidedLayers must be blocks 0..{spec.Depth - 1} (found {string.Join(", ", _guided)})");
        // If C ≤ M there is one prompt per class and no clustering ("all_classes").
        _proxies = Math.Min(options.GuidedPrompts, classes);
        _counts = Enumerable.Range(0, spec.Depth).Select(l => _guided.Contains(l) ? _proxies : options.OtherPrompts).ToArray();

        // xavier-uniform over each group's (depth, len, D) tensor, divided by 8 (§2b): bound √(6/((len + depth)·D)) / 8.
        var guidedBound = Math.Sqrt(6.0 / ((_proxies + _guided.Count) * (double)spec.Dim)) / 8;
        var otherBound = Math.Sqrt(6.0 / ((options.OtherPrompts + spec.Depth - _guided.Count) * (double)spec.Dim)) / 8;
        for (var l = 0; l < spec.Depth; l++)
        {
            var p = new Parameter(zeros(1, _counts[l], spec.Dim));
            var bound = _guided.Contains(l) ? guidedBound : otherBound;
            using (no_grad()) nn.init.uniform_(p, -bound, bound);
            register_parameter($"prompt_embeddings_{l}", p);
            _prompts.Add(p);
        }
        prompt_dropout = new ReplayableDropout(options.PromptDropout);
        head = new ClassifierHead(spec.Dim, classes, initialBias: 0);
        TensorInit.trunc_normal_(head.fc.weight, std: 0.02); // DA-VPT's head: trunc-normal 0.02, bias 0
        class_to_prompt = tensor(Enumerable.Range(0, classes).Select(c => (long)(c % _proxies)).ToArray());
        centroids = zeros(_proxies, spec.Dim);
        class_sums = zeros(classes, spec.Dim);
        class_counts = zeros(classes);

        _heads = spec.Heads;
        if (plus)
        {
            // b_K and b_V live inside the ViT's fused qkv bias; tuning them is learning an additive delta on
            // those two thirds (zero at the start, so the pretrained biases are the starting point). b_Q stays frozen.
            for (var l = 0; l < spec.Depth; l++)
            {
                var (key, value) = (new Parameter(zeros(spec.Dim)), new Parameter(zeros(spec.Dim)));
                register_parameter($"key_bias_{l}", key);
                register_parameter($"value_bias_{l}", value);
                _keyValueBiases.Add((key, value));
            }
            var tuned = new List<string> { "cls_token" };
            if (options.WiderBiases)
            {
                tuned.Add("patch_embed.proj.bias");
                for (var l = 0; l < spec.Depth; l++)
                    tuned.AddRange([$"blocks.{l}.attn.proj.bias", $"blocks.{l}.mlp.fc2.bias", $"blocks.{l}.norm2.bias",
                        $"blocks.{l}.norm1.weight", $"blocks.{l}.norm1.bias"]);
            }
            BackboneTrainables = tuned;
        }
        RegisterComponents(); // prompt_dropout and head; class_to_prompt, centroids, class_sums and class_counts as buffers
    }

    public IReadOnlyList<string> BackboneTrainables { get; } = [];

    public nn.Module Module => this;
    public BatchSampling Sampling => BatchSampling.ClassBalanced;
    public IReadOnlyList<int> PromptCounts => _counts;

    private Tensor Prompts(int layer, long batch)
    {
        return PromptTokens.ForBatch(_prompts[layer], batch, prompt_dropout);
    }

    public Tensor AfterEmbedding(Tensor tokens)
    {
        _captured.Clear();
        using var prompts = Prompts(0, tokens.size(0));
        return PromptTokens.Insert(tokens, prompts);
    }

    /// <summary>VPT-deep: the previous block's prompt outputs are discarded and this block's prompts inserted.</summary>
    public Tensor BeforeBlock(int index, Tensor x)
    {
        Tensor input;
        if (index == 0) input = x;
        else
        {
            using var prompts = Prompts(index, x.size(0));
            input = PromptTokens.Replace(x, prompts, _counts[index - 1]);
        }
        if (_guided.Contains(index) && _options.TokenAnchor == TokenAnchor.MeanPatch)
        {
            // The released code's token anchor: the mean of the block-input patch tokens.
            using var patches = PromptTokens.Patches(input, _counts[index]);
            _captured[index] = _captured.GetValueOrDefault(index) with { TokenSource = patches.mean([1]) };
        }
        return input;
    }

    /// <summary>
    /// At a guided block: keeps the CLS query W_Q·LN1(x_cls) + b_Q (heads concatenated) for the CLS term (paper §3.2). DA-VPT+ (§3.5):
    /// tuned key and value biases b_K + Δ_K, b_V + Δ_V, which add Δ_K to every key and Δ_V to every value.
    /// </summary>
    public QueryKeyValue AttentionQkv(int block, QueryKeyValue qkv)
    {
        if (_guided.Contains(block))
        {
            var q = qkv.Query;
            using var cls = q.select(2, 0);                                               // (B, H, D/H)
            _captured[block] = _captured.GetValueOrDefault(block) with { ClsQuery = cls.reshape(q.size(0), -1).MoveToOuterDisposeScope() };
        }
        if (_keyValueBiases.Count == 0) return qkv;
        var (key, value) = _keyValueBiases[block];
        using var keyDelta = key.view(_heads, 1, -1);                                     // per head, broadcast over tokens
        using var valueDelta = value.view(_heads, 1, -1);
        return qkv with { Key = qkv.Key.add(keyDelta), Value = qkv.Value.add(valueDelta) };
    }

    /// <summary>At a guided block with the paper's anchor (§3.3): keeps the attention output (heads concatenated, before W_O).</summary>
    public Tensor AttentionOutput(int block, Tensor output)
    {
        if (_guided.Contains(block) && _options.TokenAnchor == TokenAnchor.Attention)
            _captured[block] = _captured.GetValueOrDefault(block) with { TokenSource = output.alias().MoveToOuterDisposeScope() };
        return output;
    }

    public Tensor Head(Tensor pooled) => head.forward(pooled);

    public Tensor? AuxiliaryLoss(ForwardTrace trace, Tensor labels)
    {
        using (no_grad())
        using (NewDisposeScope())
        {
            // Running class means of the current model's head input, for the re-clustering at epoch end.
            var onehot = F.one_hot(labels, _classes).to(float32);
            class_sums.add_(onehot.t().matmul(trace.Pooled));
            class_counts.add_(onehot.sum(dim: 0));
        }
        var mapped = class_to_prompt.index_select(0, labels);
        Tensor? total = null;
        foreach (var l in _guided.Order())
        {
            var (clsQuery, source) = _captured.TryGetValue(l, out var captured) && captured.ClsQuery is not null && captured.TokenSource is not null
                ? (captured.ClsQuery, captured.TokenSource)
                : throw new InvalidOperationException($"block {l}'s features were not captured: AuxiliaryLoss reads the last forward pass through this method's hooks");
            var proxies = F.normalize(_prompts[l].squeeze(0), dim: 1).mul(_options.Rho);
            var tokenAnchor = _options.TokenAnchor == TokenAnchor.Attention
                // The attention output (heads concatenated, before W_O) at the sample's own prompt position.
                ? source.gather(1, mapped.add(1).view(-1, 1, 1).expand(labels.size(0), 1, source.size(2))).squeeze(1)
                : source; // the mean block-input patch token
            var layer = ProxyAnchor.Loss(F.normalize(tokenAnchor, dim: 1), proxies, mapped, _options.Alpha, _options.Delta, _options.PositiveNormaliser)
                .mul(_options.Beta)
                .add(ProxyAnchor.Loss(F.normalize(clsQuery, dim: 1), proxies, mapped, _options.Alpha, _options.Delta, _options.PositiveNormaliser)
                    .mul(_options.Lambda));
            total = total is null ? layer : total.add(layer);
        }
        return total!.div(_guided.Count);
    }

    /// <summary>The first mapping: class means of the frozen model's features (no prompts), k-means from random rows.</summary>
    public void OnTrainingStart(EpochContext context)
    {
        if (_classes <= _proxies) return;
        using var noGrad = no_grad();
        var sums = new double[_classes][];
        var counts = new int[_classes];
        foreach (var (images, labels) in context.TrainBatches())
        {
            using (images)
            using (labels)
            using (NewDisposeScope())
            {
                var pooled = context.Backbone.Forward(images, NoHooks.Instance).Pooled.data<float>().ToArray();
                var ys = labels.data<long>().ToArray();
                var d = pooled.Length / ys.Length;
                for (var i = 0; i < ys.Length; i++)
                {
                    var c = (int)ys[i];
                    if (counts[c] >= _options.ClassMeanSamples) continue;
                    sums[c] ??= new double[d];
                    for (var j = 0; j < d; j++) sums[c][j] += pooled[i * d + j];
                    counts[c]++;
                }
            }
            if (counts.All(n => n >= _options.ClassMeanSamples)) break;
        }
        var dim = centroids.size(1);
        var means = Enumerable.Range(0, _classes).SelectMany(c => counts[c] == 0 ? new float[dim]
            : sums[c].Select(v => (float)(v / counts[c]))).ToArray();
        using var rows = CosineKMeans.RowLayerNorm(tensor(means, _classes, dim));
        var seeds = Enumerable.Range(0, _classes).OrderBy(_ => _random.Next()).Take(_proxies).Select(i => (long)i).ToArray();
        using var initial = rows.index_select(0, tensor(seeds));
        Recluster(rows, initial, unseen: counts.Select(n => n == 0).ToArray());
    }

    /// <summary>Re-clusters from this epoch's running class means, warm-started from the old centroids.</summary>
    public void OnEpochEnd(EpochContext context)
    {
        if (_classes <= _proxies) return;
        using var noGrad = no_grad();
        var seen = class_counts.data<float>().ToArray().Select(n => n == 0).ToArray();
        using (var means = class_sums.div(class_counts.clamp(1).unsqueeze(1)))
        using (var rows = CosineKMeans.RowLayerNorm(means))
            Recluster(rows, centroids, seen);
        class_sums.zero_();
        class_counts.zero_();
    }

    private void Recluster(Tensor rows, Tensor initial, bool[] unseen)
    {
        var (assignment, fitted) = CosineKMeans.Fit(rows, initial, _options.KMeansIterations);
        using (fitted)
        {
            // Classes not seen get a random cluster; a clustering that puts every class together is not used.
            for (var c = 0; c < assignment.Length; c++)
                if (unseen[c]) assignment[c] = _random.Next(_proxies);
            if (assignment.Distinct().Count() == 1) return;
            using var mapping = tensor(assignment);
            class_to_prompt.copy_(mapping);
            centroids.copy_(fitted);
        }
    }

    /// <summary>
    /// DA-VPT's three groups (§2c): biases and other 1-D tensors without weight decay; prompts, the CLS token
    /// and other ≥2-D tensors with WeightDecay; the head weight with its own (large) HeadWeightDecay.
    /// </summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone)
    {
        var headWeight = Trainables.HeadOf(this).Weight;
        bool IsHeadWeight((string Name, Parameter Parameter) p) => ReferenceEquals(p.Parameter, headWeight);
        var all = Trainables.Of(this, backbone);
        return new List<ParameterGroup>
        {
            new("no_decay", all.Where(p => p.Parameter.dim() <= 1).ToList(), 0.0),
            new("decay", all.Where(p => p.Parameter.dim() > 1 && !IsHeadWeight(p)).ToList(), recipe.WeightDecay),
            new("head_weight", all.Where(IsHeadWeight).ToList(), recipe.HeadWeightDecay ?? recipe.WeightDecay),
        }.Where(g => g.Parameters.Count > 0).ToList();
    }
}

/// <summary>The Proxy-Anchor loss (Kim et al., 2020) as DA-VPT uses it (vapt_davpt.md §2a).</summary>
public static class ProxyAnchor
{
    /// <summary>
    /// The Proxy-Anchor loss (Kim et al., 2020, Eq. 4) as DA-VPT uses it (paper Eq. 5–7), s = anchors · proxiesᵀ:
    /// (1/|P⁺|)·Σ_{j∈P⁺} log(1 + Σ_{i: m_i = j} e^{−α(s_ij − δ)}) + (1/M)·Σ_j log(1 + Σ_{i: m_i ≠ j} e^{α(s_ij + δ)}),
    /// P⁺ the proxies with a positive in the batch (<see cref="PositiveNormaliser.ProxiesWithPositives"/>, the paper), or M
    /// in the first term too (<see cref="PositiveNormaliser.AllProxies"/>, the released code).
    /// </summary>
    /// <remarks>
    /// Both terms are log-sum-exps over masked entries, with the "1 +" as an entry of value 0: e^{α(s ± δ)} overflows
    /// float32 once α·|s| passes about 88 (ρ·cos ≳ 2.7 at α = 32), and the overflow masked by a zero became NaN. Here the
    /// loss is finite and exact for any ρ and α, and a proxy without positives contributes exactly 0 with a zero gradient.
    /// </remarks>
    public static Tensor Loss(Tensor anchors, Tensor proxies, Tensor mapped, double alpha, double delta,
        PositiveNormaliser normaliser = PositiveNormaliser.ProxiesWithPositives)
    {
        var m = proxies.size(0);
        var s = anchors.matmul(proxies.t());                                           // (B, M)
        var positive = F.one_hot(mapped, m).to(ScalarType.Bool);
        var pos = MaskedSoftplusLse(s.sub(delta).mul(-alpha), positive);               // (M)
        var neg = MaskedSoftplusLse(s.add(delta).mul(alpha), positive.logical_not());  // (M)
        var withPositives = positive.any(0).sum().to(s.dtype).clamp_min(1);
        var posTerm = normaliser == PositiveNormaliser.AllProxies ? pos.sum().div(m) : pos.sum().div(withPositives);
        return posTerm.add(neg.sum().div(m));
    }

    /// <summary>log(1 + Σ_{i: mask} e^{x_ij}) per column j, as a log-sum-exp over the column's masked entries and a 0.</summary>
    private static Tensor MaskedSoftplusLse(Tensor x, Tensor mask)
    {
        var masked = x.masked_fill(mask.logical_not(), double.NegativeInfinity);
        return cat([zeros(1, x.size(1), dtype: x.dtype, device: x.device), masked], 0).logsumexp(0);
    }
}
