using Peft.Abstractions.Backbone;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Vision.Tests;

/// <summary>
/// A test-only prompt method that exercises every hook seam: VPT-style prompts inserted after the embedding
/// and replaced before chosen blocks, GatedPT-style mixing of the prompt slots after a block, per-block
/// attention temperatures and feature capture. Pooling is the interface's default (CLS after the final norm).
/// </summary>
internal class ProbeHooks : IBackboneHooks
{
    /// <summary>Prompts (1, p, D) inserted after the CLS token.</summary>
    public Tensor? Prompts { get; init; }

    /// <summary>Per block: prompts (1, p, D) that replace the prompt slots of the block's input.</summary>
    public Dictionary<int, Tensor> DeepPrompts { get; } = [];

    /// <summary>Per block: g, so that the prompt slots after the block become g·output + (1 − g)·input.</summary>
    public Dictionary<int, double> Gates { get; } = [];

    public Dictionary<int, Tensor> Temperatures { get; } = [];

    public HashSet<int> Capture { get; } = [];

    private int Count => (int)(Prompts?.size(1) ?? 0);

    public Tensor AfterEmbedding(Tensor tokens) =>
        Prompts is null ? tokens : PromptTokens.Insert(tokens, PromptTokens.ExpandToBatch(Prompts, tokens.size(0)));

    public Tensor BeforeBlock(int index, Tensor x) =>
        DeepPrompts.TryGetValue(index, out var p) ? PromptTokens.Replace(x, PromptTokens.ExpandToBatch(p, x.size(0)), Count) : x;

    public Tensor AfterBlock(int index, Tensor blockInput, Tensor blockOutput)
    {
        if (!Gates.TryGetValue(index, out var g)) return blockOutput;
        using var output = PromptTokens.Slots(blockOutput, Count);
        using var input = PromptTokens.Slots(blockInput, Count);
        using var kept = output.mul(g);
        using var carried = input.mul(1 - g);
        using var mixed = kept.add(carried);
        return PromptTokens.Replace(blockOutput, mixed, Count);
    }

    public Tensor? AttentionTemperature(int index) => Temperatures.GetValueOrDefault(index);

    public bool CaptureFeatures(int index) => Capture.Contains(index);
}

/// <summary>The probe with MAE-style pooling: the mean over every token but CLS (prompts included) after the final norm.</summary>
internal sealed class MeanPoolingProbe : ProbeHooks, IBackboneHooks
{
    public Tensor Pool(Tensor tokens, IVisionBackbone backbone)
    {
        using var normed = backbone.FinalNorm(tokens);
        using var rest = normed.narrow(1, 1, tokens.size(1) - 1);
        return rest.mean([1]);
    }
}
