using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Vision.Checkpoints;

/// <summary>Absolute position-embedding tables of shape (1, 1 + g², D): CLS entry first, then the g×g grid row by row.</summary>
public static class PositionEmbedding
{
    /// <summary>The grid side g of a (1, <paramref name="prefixTokens"/> + g², <paramref name="dim"/>) table, or null when the shape is not one.</summary>
    public static int? GridOf(IReadOnlyList<long> shape, int dim, int prefixTokens = 1)
    {
        if (shape.Count != 3 || shape[0] != 1 || shape[2] != dim || shape[1] <= prefixTokens) return null;
        var cells = shape[1] - prefixTokens;
        var side = (long)Math.Round(Math.Sqrt(cells));
        return side * side == cells ? (int)side : null;
    }

    /// <summary>
    /// Resizes the grid part of a position-embedding table to <paramref name="grid"/>×<paramref name="grid"/>
    /// by bilinear interpolation, keeping the prefix (CLS) entries as they are. Returns a new float32 tensor.
    /// </summary>
    /// <remarks>
    /// align_corners = true: the corner cells keep their values and output cell i samples the old grid at
    /// i·(g_old − 1)/(g_new − 1). This is what VPT's loader does (<c>scipy.ndimage.zoom(order=1)</c>, whose
    /// default <c>grid_mode=False</c> maps the corner pixel centres onto each other). timm resamples with
    /// bicubic, align_corners = false and antialiasing instead; VPT's convention is chosen because its
    /// family of prompt methods is what this project reproduces.
    /// </remarks>
    public static Tensor Resample(Tensor posEmbed, int grid, int prefixTokens = 1)
    {
        var dim = (int)posEmbed.size(-1);
        var old = GridOf(posEmbed.shape, dim, prefixTokens)
            ?? throw new ArgumentException($"position embedding [{string.Join(", ", posEmbed.shape)}] is not (1, {prefixTokens} + g², D)", nameof(posEmbed));
        using var table = posEmbed.to(float32);
        using var prefix = table.narrow(1, 0, prefixTokens);
        using var cells = table.narrow(1, prefixTokens, (long)old * old);
        using var rows = cells.reshape(1, old, old, dim);
        using var image = rows.permute(0, 3, 1, 2);                                   // (1, D, g, g)
        using var resized = F.interpolate(image, size: [grid, grid], mode: InterpolationMode.Bilinear, align_corners: true);
        using var back = resized.permute(0, 2, 3, 1);                                 // (1, g', g', D)
        using var tokens = back.reshape(1, (long)grid * grid, dim);
        return cat([prefix, tokens], 1);
    }

    /// <summary>
    /// MoCo v3's fixed 2-D sin-cos table (<c>vits.py</c>, <c>build_2d_sincos_position_embedding</c>):
    /// ω_k = 1 / temperature^(k / (D/4)) for k &lt; D/4, and for the patch at row r, column c (token 1 + r·g + c)
    /// the entry [sin(r·ω), cos(r·ω), sin(c·ω), cos(c·ω)]; the CLS entry is zero. Shape (1, 1 + g², D), float32.
    /// </summary>
    /// <remarks>
    /// MoCo names the first pair "w": it calls <c>torch.meshgrid(grid_w, grid_h)</c> with the default 'ij'
    /// indexing, so after flattening the "w" coordinate of token m is m / g, which is the row of the
    /// row-major patch grid, and the "h" coordinate is m mod g, the column. Intermediates are rounded to
    /// float32 as MoCo's float32 tensors are; sin and cos are evaluated in double, so entries agree with
    /// MoCo's table to within about one float32 ulp.
    /// </remarks>
    public static Tensor SinCos2d(int grid, int dim, double temperature = 10000.0)
    {
        if (dim % 4 != 0) throw new ArgumentException($"the 2-D sin-cos embedding needs a width divisible by 4, not {dim}", nameof(dim));
        var quarter = dim / 4;
        var omega = new float[quarter];
        for (var k = 0; k < quarter; k++)
            omega[k] = 1f / (float)Math.Pow(temperature, (float)k / quarter);

        var values = new float[(1 + grid * grid) * dim];                            // row 0: CLS, zero
        for (var m = 0; m < grid * grid; m++)
        {
            var row = values.AsSpan((1 + m) * dim, dim);
            var (r, c) = (m / grid, m % grid);
            for (var k = 0; k < quarter; k++)
            {
                float ar = r * omega[k], ac = c * omega[k];
                row[k] = (float)Math.Sin(ar);
                row[quarter + k] = (float)Math.Cos(ar);
                row[2 * quarter + k] = (float)Math.Sin(ac);
                row[3 * quarter + k] = (float)Math.Cos(ac);
            }
        }
        return tensor(values, [1, 1 + grid * grid, dim]);
    }
}
