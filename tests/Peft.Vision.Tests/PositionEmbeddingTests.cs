using Peft.Abstractions.Backbone;
using Peft.Vision.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using static Peft.Vision.Tests.TestSupport;

namespace Peft.Vision.Tests;

/// <summary>Bilinear resampling of the position-embedding grid (align_corners = true, as VPT's scipy zoom), CLS kept.</summary>
public class PositionEmbeddingTests
{
    /// <summary>A (1, 1 + g², dim) table with CLS entry <paramref name="cls"/> and cell (r, c, channel) = f(r, c, channel).</summary>
    private static Tensor Table(int g, int dim, Func<int, int, int, float> f, float cls = -9f)
    {
        var v = new float[(1 + g * g) * dim];
        for (var ch = 0; ch < dim; ch++) v[ch] = cls + ch;
        for (var r = 0; r < g; r++)
            for (var c = 0; c < g; c++)
                for (var ch = 0; ch < dim; ch++)
                    v[(1 + r * g + c) * dim + ch] = f(r, c, ch);
        return tensor(v, 1, 1 + g * g, dim);
    }

    private static float Cell(float[] table, int g, int dim, int r, int c, int ch) => table[(1 + r * g + c) * dim + ch];

    [Fact]
    public void A_constant_grid_stays_constant_and_the_cls_entry_is_kept()
    {
        using var scope = NewDisposeScope();
        var resampled = PositionEmbedding.Resample(Table(3, 4, (_, _, ch) => 0.75f + ch), 7);
        Assert.Equal([1L, 50, 4], resampled.shape);
        var v = resampled.data<float>().ToArray();
        Assert.Equal(new[] { -9f, -8f, -7f, -6f }, v[..4]);
        for (var r = 0; r < 7; r++)
            for (var c = 0; c < 7; c++)
                for (var ch = 0; ch < 4; ch++)
                    Assert.Equal(0.75f + ch, Cell(v, 7, 4, r, c, ch), 6);
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(4, 6)]
    [InlineData(6, 4)]
    public void A_linear_ramp_is_interpolated_exactly(int from, int to)
    {
        // value = 2·column + 0.5 in channel 0 and 3 − row in channel 1. With align_corners the new cell i sits at
        // old coordinate i·(from − 1)/(to − 1), and bilinear interpolation reproduces a linear function there.
        using var scope = NewDisposeScope();
        var resampled = PositionEmbedding.Resample(Table(from, 2, (r, c, ch) => ch == 0 ? 2f * c + 0.5f : 3f - r), to);
        var v = resampled.data<float>().ToArray();
        var step = (from - 1.0) / (to - 1.0);
        for (var r = 0; r < to; r++)
            for (var c = 0; c < to; c++)
            {
                Assert.Equal(2 * c * step + 0.5, Cell(v, to, 2, r, c, 0), 5);
                Assert.Equal(3 - r * step, Cell(v, to, 2, r, c, 1), 5);
            }
        Assert.Equal(new[] { -9f, -8f }, v[..2]);
    }

    [Fact]
    public void A_2x2_grid_resampled_to_4x4_matches_bilinear_weights_computed_by_hand()
    {
        using var scope = NewDisposeScope();
        // corners a (top left), b (top right), c (bottom left), d (bottom right), in two channels
        float[][] corners = [[1f, -4f], [5f, 2f], [-3f, 0.5f], [10f, 8f]];
        var resampled = PositionEmbedding.Resample(Table(2, 2, (r, c, ch) => corners[r * 2 + c][ch]), 4);
        var v = resampled.data<float>().ToArray();
        for (var i = 0; i < 4; i++)
            for (var j = 0; j < 4; j++)
                for (var ch = 0; ch < 2; ch++)
                {
                    double u = i / 3.0, w = j / 3.0;                   // align_corners: 0, 1/3, 2/3, 1
                    var expected = (1 - u) * (1 - w) * corners[0][ch] + (1 - u) * w * corners[1][ch]
                        + u * (1 - w) * corners[2][ch] + u * w * corners[3][ch];
                    Assert.Equal(expected, Cell(v, 4, 2, i, j, ch), 5);
                }
        Assert.Equal(new[] { -9f, -8f }, v[..2]);
    }

    [Fact]
    public void Only_square_grids_after_the_cls_entry_are_resampleable()
    {
        Assert.Equal(14, PositionEmbedding.GridOf([1, 197, 768], 768));
        Assert.Null(PositionEmbedding.GridOf([1, 196, 768], 768));   // no CLS entry: 195 is not a square
        Assert.Null(PositionEmbedding.GridOf([1, 197, 384], 768));
        Assert.Null(PositionEmbedding.GridOf([197, 768], 768));
    }

    [Fact]
    public void A_checkpoint_from_another_grid_is_resampled_on_load()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        using var small = RandomVit();                                             // 32 px: a 4×4 grid
        var path = dir.File("vit.safetensors");
        VitCheckpoints.Save(small, path);

        using var large = new VisionTransformer(Small with { ImageSize = 48 });  // a 6×6 grid
        var load = VitCheckpoints.Load(large, path, BackboneKind.Supervised);
        Assert.Equal(4, load.ResampledFromGrid);
        AssertBitwiseEqual(PositionEmbedding.Resample(small.pos_embed, 6), large.pos_embed);
        AssertBitwiseEqual(small.blocks[1].mlp.fc2.weight, large.blocks[1].mlp.fc2.weight);
        AssertBitwiseEqual(small.cls_token, large.cls_token);
    }
}
