using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Abstractions.Backbone;

/// <summary>Prompt placement shared by every prompt method: [CLS, prompts, patches].</summary>
public static class PromptTokens
{
    /// <summary>
    /// Inserts prompts (B, p, D) after the CLS token of (B, 1 + N, D) tokens. They are inserted after the
    /// position embedding was added, so they carry none (VPT §3.2).
    /// </summary>
    public static Tensor Insert(Tensor tokens, Tensor prompts)
    {
        using var cls = tokens.narrow(1, 0, 1);
        using var patches = tokens.narrow(1, 1, tokens.size(1) - 1);
        return cat([cls, prompts, patches], 1);
    }

    /// <summary>
    /// Replaces the <paramref name="count"/> prompt slots of (B, 1 + p + N, D) tokens with new prompts:
    /// deep prompts throw the previous block's prompt outputs away, they do not accumulate (VPT-deep).
    /// </summary>
    public static Tensor Replace(Tensor tokens, Tensor prompts, int count)
    {
        using var cls = tokens.narrow(1, 0, 1);
        using var patches = tokens.narrow(1, 1 + count, tokens.size(1) - 1 - count);
        return cat([cls, prompts, patches], 1);
    }

    /// <summary>The prompt slots (B, p, D) of (B, 1 + p + N, D) tokens.</summary>
    public static Tensor Slots(Tensor tokens, int count) => tokens.narrow(1, 1, count);

    /// <summary>The patch tokens (B, N, D) of (B, 1 + p + N, D) tokens.</summary>
    public static Tensor Patches(Tensor tokens, int promptCount) =>
        tokens.narrow(1, 1 + promptCount, tokens.size(1) - 1 - promptCount);

    /// <summary>
    /// Inserts one shared (1, p, D) prompt set at the input: expanded to the batch, prompt dropout (train mode only),
    /// after CLS.
    /// </summary>
    public static Tensor InsertShared(Tensor tokens, Tensor prompts, Dropout dropout) =>
        InsertShared(tokens, prompts, (nn.Module<Tensor, Tensor>)dropout);

    /// <summary>
    /// Inserts one shared (1, p, D) prompt set at the input: expanded to the batch, then <paramref name="dropout"/> (any
    /// dropout module, such as a <see cref="Methods.ReplayableDropout"/>), after CLS.
    /// </summary>
    public static Tensor InsertShared(Tensor tokens, Tensor prompts, nn.Module<Tensor, Tensor> dropout)
    {
        using var batch = ForBatch(prompts, tokens.size(0), dropout);
        return Insert(tokens, batch);
    }

    /// <summary>
    /// A (1, p, D) prompt set for a batch of <paramref name="batch"/>: expanded first, then dropped out, so every sample
    /// draws its own mask, as the official code does (VPT's vit.py: <c>self.prompt_dropout(self.prompt_embeddings.expand(B, -1, -1))</c>).
    /// In eval mode (or with no dropout) the expansion stays a view.
    /// </summary>
    public static Tensor ForBatch(Tensor prompts, long batch, Dropout dropout) => ForBatch(prompts, batch, (nn.Module<Tensor, Tensor>)dropout);

    /// <summary>
    /// A (1, p, D) prompt set for a batch of <paramref name="batch"/>, expanded first and then passed through
    /// <paramref name="dropout"/> (any dropout module, such as a <see cref="Methods.ReplayableDropout"/>), so that every
    /// sample gets its own mask.
    /// </summary>
    public static Tensor ForBatch(Tensor prompts, long batch, nn.Module<Tensor, Tensor> dropout)
    {
        using var expanded = ExpandToBatch(prompts, batch);
        return dropout.forward(expanded);
    }

    /// <summary>A (1, p, D) parameter expanded to the batch without copying.</summary>
    public static Tensor ExpandToBatch(Tensor prompts, long batch) =>
        prompts.expand(batch, prompts.size(-2), prompts.size(-1));
}
