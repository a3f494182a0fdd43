using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Plugins.Vapt;

#pragma warning disable IDE1006 // fields are named as the official code's tensors (the adapter file's keys)

/// <summary>
/// One block's prompt generator (vapt_davpt.md §1a step 2): LayerNorm over the patch tokens, one K×K
/// kernel shared by every channel (K² parameters, no bias, no padding), channel dropout, and a
/// token-wise Linear over the (g−K+1)² positions → N_p, initialised to zero so prompts start at 0.
/// </summary>
public sealed class AdaptivePromptGenerator : nn.Module
{
    private readonly int _grid;
    private readonly int _kernel;

    public readonly LayerNorm norm;
    public readonly Parameter kernel;
    public readonly ReplayableDropout conv_dropout;
    public readonly Linear token_proj;

    public AdaptivePromptGenerator(int dim, int grid, int kernelSize, int prompts, double convDropout) : base(nameof(AdaptivePromptGenerator))
    {
        (_grid, _kernel) = (grid, kernelSize);
        norm = nn.LayerNorm(dim, 1e-5);
        kernel = new Parameter(randn(1, 1, kernelSize, kernelSize));
        conv_dropout = new ReplayableDropout(convDropout, channelwise: true);
        var side = grid - kernelSize + 1;
        token_proj = nn.Linear(side * side, prompts);
        using (no_grad())
        {
            nn.init.zeros_(token_proj.weight);
            nn.init.zeros_(token_proj.bias!);
        }
        RegisterComponents();
    }

    /// <summary>Patch tokens (B, N, D) → G (B, N_p, D).</summary>
    public Tensor Generate(Tensor patches)
    {
        long b = patches.size(0), d = patches.size(2);
        using var normed = norm.forward(patches);
        using var grid = normed.transpose(1, 2).reshape(b, d, _grid, _grid);           // (B, D, g, g), row-major patches
        using var shared = kernel.expand(d, 1, _kernel, _kernel).contiguous();         // one kernel for every channel
        using var conv = F.conv2d(grid, shared, groups: d);                             // (B, D, g', g')
        using var dropped = conv_dropout.forward(conv);
        using var flat = dropped.flatten(2);                                            // (B, D, g'²)
        using var mixed = token_proj.forward(flat);                                     // (B, D, N_p): mixes positions, not channels
        return mixed.transpose(1, 2);                                                   // (B, N_p, D)
    }
}

/// <summary>The feature projector shared by every block: P = G + W2·drop(ReLU(W1·G)), no biases.</summary>
public sealed class PromptProjector : nn.Module<Tensor, Tensor>
{
    public readonly Linear fc1;
    public readonly Linear fc2;
    public readonly ReplayableDropout dropout;

    public PromptProjector(int dim, int rank, double dropoutRate) : base(nameof(PromptProjector))
    {
        fc1 = nn.Linear(dim, rank, hasBias: false);
        fc2 = nn.Linear(rank, dim, hasBias: false);
        dropout = new ReplayableDropout(dropoutRate);
        RegisterComponents();
    }

    public override Tensor forward(Tensor g)
    {
        using var h = fc1.forward(g);
        using var a = F.relu(h);
        using var d = dropout.forward(a);
        using var o = fc2.forward(d);
        return g.add(o); // the official code's residual (the paper writes g(x) without it)
    }
}

/// <summary>
/// VAPT, following the official code (vapt_davpt.md §1): block 0 gets static VPT prompts; before every
/// block l ≥ 1 the prompt slots are replaced by prompts generated from that block's input patch tokens.
/// </summary>
public sealed class VaptMethod : nn.Module, IPeftMethod
{
    private readonly int _prompts;

    public readonly Parameter prompt_embeddings;
    public readonly ReplayableDropout prompt_dropout;
    public readonly ModuleList<AdaptivePromptGenerator> generators;
    public readonly PromptProjector projector;
    public readonly ClassifierHead head;

    public VaptMethod(IVisionBackbone backbone, int classes, VaptOptions options) : base(nameof(VaptMethod))
    {
        var spec = backbone.Spec;
        _prompts = options.PromptTokens;
        if (options.KernelSize > spec.Grid)
            throw new ArgumentException($"Method:Options:KernelSize {options.KernelSize} exceeds the patch grid {spec.Grid}");
        prompt_embeddings = PromptInit.VptUniform([1, _prompts, spec.Dim], spec.PatchSize, spec.Dim);
        prompt_dropout = new ReplayableDropout(options.PromptDropout);
        generators = nn.ModuleList(Enumerable.Range(1, spec.Depth - 1)
            .Select(_ => new AdaptivePromptGenerator(spec.Dim, spec.Grid, options.KernelSize, _prompts, options.ConvDropout)).ToArray());
        projector = new PromptProjector(spec.Dim, options.BottleneckRank, options.MlpDropout);
        head = new ClassifierHead(spec.Dim, classes);
        RegisterComponents();
    }

    public nn.Module Module => this;

    public Tensor AfterEmbedding(Tensor tokens) => PromptTokens.InsertShared(tokens, prompt_embeddings, prompt_dropout);

    public Tensor BeforeBlock(int index, Tensor x)
    {
        if (index == 0) return x;
        using var patches = PromptTokens.Patches(x, _prompts);
        using var g = generators[index - 1].Generate(patches);
        using var prompts = projector.forward(g);
        return PromptTokens.Replace(x, prompts, _prompts);
    }

    public Tensor Head(Tensor pooled) => head.forward(pooled);

    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);
}
