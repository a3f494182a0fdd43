using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Plugins.DaVpt;

/// <summary>
/// Cosine k-means on rows (vapt_davpt.md §2a): assign each row to the centroid of largest cosine,
/// move each centroid to the mean of its rows, at most <c>iterations</c> times or until no centroid
/// moves by more than 1e-4; an empty cluster keeps its centroid.
/// </summary>
public static class CosineKMeans
{
    /// <summary>Returns (assignment of each row, centroids). Rows (n, d), initial centroids (k, d).</summary>
    public static (long[] Assignment, Tensor Centroids) Fit(Tensor rows, Tensor initial, int iterations)
    {
        using var noGrad = no_grad();
        using var unit = F.normalize(rows, dim: 1);
        var centroids = F.normalize(initial, dim: 1).DetachFromDisposeScope();
        var k = initial.size(0);
        long[] assignment = [];
        for (var it = 0; it < iterations; it++)
        {
            using var scope = NewDisposeScope();
            var cos = unit.matmul(centroids.t());
            assignment = cos.argmax(1).data<long>().ToArray();
            var next = centroids.clone();
            for (var c = 0; c < k; c++)
            {
                var members = Enumerable.Range(0, assignment.Length).Where(i => assignment[i] == c).Select(i => (long)i).ToArray();
                if (members.Length == 0) continue; // an empty cluster keeps its centroid
                var mean = unit.index_select(0, tensor(members)).mean([0]);
                next.select(0, c).copy_(F.normalize(mean.unsqueeze(0), dim: 1).squeeze(0));
            }
            var shift = (next - centroids).abs().max().item<float>();
            centroids.Dispose();
            centroids = next.DetachFromDisposeScope();
            if (shift < 1e-4) break;
        }
        using (NewDisposeScope())
            assignment = unit.matmul(centroids.t()).argmax(1).data<long>().ToArray();
        return (assignment, centroids);
    }

    /// <summary>Parameter-free LayerNorm of each row (the code's kmeans_norm = 'layer').</summary>
    public static Tensor RowLayerNorm(Tensor rows) => F.layer_norm(rows, [rows.size(1)], eps: 1e-5);
}
