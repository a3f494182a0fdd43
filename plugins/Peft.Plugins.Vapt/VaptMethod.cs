using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Torch;
using static Peft.Torch.torch;
using F = Peft.Torch.torch.nn.functional;

namespace Peft.Plugins.Vapt;

/// <summary>
/// One block's prompt generator (vapt_davpt.md §1a step 2): LayerNorm over the patch tokens, one K×K
/// kernel shared by every channel (K² parameters, no bias, no padding), channel dropout, and a
/// token-wise Linear over the (g−K+1)² positions → N_p, initialised to zero so prompts start at 0.
/// </summary>
public sealed class AdaptivePromptGenerator : nn.Module
{
    private readonly int _grid;
    private readonly int _kernel;

    public nn.LayerNorm norm { get; }
    public nn.Parameter kernel { get; }
    public nn.Dropout2d conv_dropout { get; }
    public nn.Linear token_proj { get; }

    public AdaptivePromptGenerator(int dim, int grid, int kernelSize, int prompts, double convDropout)
    {
        (_grid, _kernel) = (grid, kernelSize);
        norm = RegisterModule("norm", new nn.LayerNorm([dim], 1e-5));
        kernel = RegisterParameter("kernel", new nn.Parameter(randn(1, 1, kernelSize, kernelSize)));
        conv_dropout = RegisterModule("conv_dropout", new nn.Dropout2d(convDropout));
        var side = grid - kernelSize + 1;
        token_proj = RegisterModule("token_proj", new nn.Linear(side * side, prompts));
        nn.init.zeros_(token_proj.weight);
        nn.init.zeros_(token_proj.bias!);
    }

    /// <summary>Patch tokens (B, N, D) → G (B, N_p, D).</summary>
    public Tensor Generate(Tensor patches)
    {
        long b = patches.size(0), d = patches.size(2);
        using var normed = norm.call(patches);
        using var grid = normed.transpose(1, 2).reshape(b, d, _grid, _grid);           // (B, D, g, g), row-major patches
        using var shared = kernel.expand(d, 1, _kernel, _kernel).contiguous();         // one kernel for every channel
        using var conv = F.conv2d(grid, shared, groups: d);                             // (B, D, g', g')
        using var dropped = conv_dropout.call(conv);
        using var flat = dropped.flatten(2);                                            // (B, D, g'²)
        using var mixed = token_proj.call(flat);                                        // (B, D, N_p): mixes positions, not channels
        return mixed.transpose(1, 2);                                                   // (B, N_p, D)
    }
}

/// <summary>The feature projector shared by every block: P = G + W2·drop(ReLU(W1·G)), no biases.</summary>
public sealed class PromptProjector : nn.Module<Tensor, Tensor>
{
    public nn.Linear fc1 { get; }
    public nn.Linear fc2 { get; }
    public nn.Dropout dropout { get; }

    public PromptProjector(int dim, int rank, double dropoutRate)
    {
        fc1 = RegisterModule("fc1", new nn.Linear(dim, rank, bias: false));
        fc2 = RegisterModule("fc2", new nn.Linear(rank, dim, bias: false));
        dropout = RegisterModule("dropout", new nn.Dropout(dropoutRate));
    }

    public override Tensor forward(Tensor g)
    {
        using var h = fc1.call(g);
        using var a = F.relu(h);
        using var d = dropout.call(a);
        using var o = fc2.call(d);
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

    public nn.Parameter prompt_embeddings { get; }
    public nn.Dropout prompt_dropout { get; }
    public nn.ModuleList<AdaptivePromptGenerator> generators { get; }
    public PromptProjector projector { get; }
    public ClassifierHead head { get; }

    public VaptMethod(IVisionBackbone backbone, int classes, VaptOptions options)
    {
        var spec = backbone.Spec;
        _prompts = options.PromptTokens;
        if (options.KernelSize > spec.Grid)
            throw new ArgumentException($"Method:Options:KernelSize {options.KernelSize} exceeds the patch grid {spec.Grid}");
        prompt_embeddings = RegisterParameter("prompt_embeddings", PromptInit.VptUniform([1, _prompts, spec.Dim], spec.PatchSize, spec.Dim));
        prompt_dropout = RegisterModule("prompt_dropout", new nn.Dropout(options.PromptDropout));
        generators = RegisterModule("generators", new nn.ModuleList<AdaptivePromptGenerator>(Enumerable.Range(1, spec.Depth - 1)
            .Select(_ => new AdaptivePromptGenerator(spec.Dim, spec.Grid, options.KernelSize, _prompts, options.ConvDropout))));
        projector = RegisterModule("projector", new PromptProjector(spec.Dim, options.BottleneckRank, options.MlpDropout));
        head = RegisterModule("head", new ClassifierHead(spec.Dim, classes));
    }

    public nn.Module Module => this;

    public Tensor AfterEmbedding(Tensor tokens) => PromptTokens.InsertShared(tokens, prompt_embeddings, prompt_dropout);

    public Tensor BeforeBlock(int index, Tensor x)
    {
        if (index == 0) return x;
        using var patches = PromptTokens.Patches(x, _prompts);
        using var g = generators[index - 1].Generate(patches);
        using var prompts = projector.call(g);
        return PromptTokens.Replace(x, prompts, _prompts);
    }

    public Tensor Head(Tensor pooled) => head.call(pooled);

    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);
}
