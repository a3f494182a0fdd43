using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Abstractions.Backbone;

/// <summary>
/// Query, key and value of one block's attention, split into heads: (B, H, T, D/H) each. The keys and values may
/// hold more tokens than the queries (prefix tuning appends learned ones); the output has the queries' length.
/// </summary>
public readonly record struct QueryKeyValue(Tensor Query, Tensor Key, Tensor Value);

/// <summary>
/// The attention seam of every block. Multi-head self-attention of the pre-norm block computes, per block l:
/// <code>
/// q, k, v = split(W_qkv · LN1(x) + b_qkv)            (B, H, T, D/H)     → AttentionQkv(l, …) may change them
/// logits  = q · kᵀ / √(D/H)                           (B, H, T, T')      → AttentionLogits(l, …), when NeedsAttentionLogits(l)
/// out     = softmax(logits) · v, heads concatenated   (B, T, D)          → AttentionOutput(l, …) reads (or replaces) it
/// x       = x + W_O · out + b_O
/// </code>
/// Every member's default is the plain ViT's attention, so a method overrides only what it changes. A temperature
/// (softmax(logits / τ)) is q / τ; tuned key/value biases are additions to k and v; key/value prompts are tokens
/// concatenated to k and v. The logits exist only when some hook asks for them: otherwise the backbone takes libtorch's
/// fused attention, which never builds the (B, H, T, T') matrix.
/// </summary>
/// <remarks>
/// The hooks run inside the block's dispose scope: the tensors they are given are released as soon as the block has
/// used what the hook returned, and what they create when the block returns (autograd keeps what backward needs). A tensor a method keeps for later (a feature its
/// auxiliary loss reads) is moved out with <c>MoveToOuterDisposeScope()</c>, into the forward pass's caller's scope.
/// </remarks>
public interface IAttentionHooks
{
    /// <summary>Block <paramref name="block"/>'s projected queries, keys and values, before the product; return them or new ones.</summary>
    QueryKeyValue AttentionQkv(int block, QueryKeyValue qkv) => qkv;

    /// <summary>Whether block <paramref name="block"/> must build its attention logits for <see cref="AttentionLogits"/>.</summary>
    bool NeedsAttentionLogits(int block) => false;

    /// <summary>Block <paramref name="block"/>'s logits q·kᵀ/√(D/H) (B, H, T, T'), scaled, before the softmax; return them or new ones.</summary>
    Tensor AttentionLogits(int block, Tensor logits) => logits;

    /// <summary>Block <paramref name="block"/>'s attention output (B, T, D), heads concatenated, before the output projection.</summary>
    Tensor AttentionOutput(int block, Tensor output) => output;
}
