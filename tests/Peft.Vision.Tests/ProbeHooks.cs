using Peft.Abstractions.Backbone;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Vision.Tests;

/// <summary>What <see cref="ProbeHooks"/> kept of one block: its input, its queries (heads concatenated) and its attention output.</summary>
internal sealed record BlockCapture(Tensor Input, Tensor Query, Tensor AttentionOutput);

/// <summary>
/// A test-only prompt method that exercises every hook seam: VPT-style prompts inserted after the embedding and
/// replaced before chosen blocks, GatedPT-style mixing of the prompt slots after a block, per-block attention
/// temperatures (q / τ), learned key/value tokens appended to chosen blocks' keys and values, a logits hook, and
/// capture of block inputs, queries and attention outputs. Pooling is the interface's default (CLS after the final norm).
/// </summary>
internal class ProbeHooks : IBackboneHooks
{
    /// <summary>Prompts (1, p, D) inserted after the CLS token.</summary>
    public Tensor? Prompts { get; init; }

    /// <summary>Per block: prompts (1, p, D) that replace the prompt slots of the block's input.</summary>
    public Dictionary<int, Tensor> DeepPrompts { get; } = [];

    /// <summary>Per block: g, so that the prompt slots after the block become g·output + (1 − g)·input.</summary>
    public Dictionary<int, double> Gates { get; } = [];

    /// <summary>Per block: τ dividing the queries, so softmax(q·kᵀ/√d_h / τ).</summary>
    public Dictionary<int, Tensor> Temperatures { get; } = [];

    /// <summary>Per block: keys and values (1, H, n, D/H) appended to the block's own (prefix tuning).</summary>
    public Dictionary<int, (Tensor Keys, Tensor Values)> KeyValuePrompts { get; } = [];

    /// <summary>Per block: a function of the attention logits (B, H, T, T') whose result the softmax takes.</summary>
    public Dictionary<int, Func<Tensor, Tensor>> Logits { get; } = [];

    public HashSet<int> Capture { get; } = [];

    /// <summary>The captured blocks of the last forward pass, by index.</summary>
    public Dictionary<int, BlockCapture> Captured { get; } = [];

    /// <summary>The keys and values (after the hooks) of the captured blocks in the last pass, by index.</summary>
    public Dictionary<int, QueryKeyValue> CapturedQkv { get; } = [];

    private readonly Dictionary<int, Tensor> _inputs = [];

    private int Count => (int)(Prompts?.size(1) ?? 0);

    public Tensor AfterEmbedding(Tensor tokens)
    {
        Captured.Clear();
        CapturedQkv.Clear();
        return Prompts is null ? tokens : PromptTokens.Insert(tokens, PromptTokens.ExpandToBatch(Prompts, tokens.size(0)));
    }

    public Tensor BeforeBlock(int index, Tensor x)
    {
        var input = DeepPrompts.TryGetValue(index, out var p) ? PromptTokens.Replace(x, PromptTokens.ExpandToBatch(p, x.size(0)), Count) : x;
        if (Capture.Contains(index)) _inputs[index] = input.alias();
        return input;
    }

    public QueryKeyValue AttentionQkv(int block, QueryKeyValue qkv)
    {
        if (Temperatures.TryGetValue(block, out var tau)) qkv = qkv with { Query = qkv.Query.div(tau) };
        if (KeyValuePrompts.TryGetValue(block, out var prefix))
        {
            var b = qkv.Key.size(0);
            qkv = qkv with
            {
                Key = cat([prefix.Keys.expand(b, -1, -1, -1), qkv.Key], 2),
                Value = cat([prefix.Values.expand(b, -1, -1, -1), qkv.Value], 2),
            };
        }
        if (Capture.Contains(block))
            CapturedQkv[block] = new(Keep(qkv.Query), Keep(qkv.Key), Keep(qkv.Value));
        return qkv;
    }

    public bool NeedsAttentionLogits(int block) => Logits.ContainsKey(block);

    public Tensor AttentionLogits(int block, Tensor logits) => Logits[block](logits);

    public Tensor AttentionOutput(int block, Tensor output)
    {
        if (Capture.Contains(block))
        {
            var q = CapturedQkv[block].Query;                              // (B, H, T, D/H) → (B, T, D), heads concatenated
            using var merged = q.transpose(1, 2).reshape(q.size(0), q.size(2), -1);
            Captured[block] = new(_inputs[block], Keep(merged), Keep(output));
        }
        return output;
    }

    // The attention hooks run in the block's dispose scope: what the test reads afterwards moves to the caller's.
    private static Tensor Keep(Tensor t) => t.alias().MoveToOuterDisposeScope();

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
