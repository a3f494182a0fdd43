using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

internal static class Resampling
{
    /// <summary>Bilinear resize of a [C, H, W] tensor; returns the input itself when the size already matches.</summary>
    internal static Tensor Bilinear(Tensor image, long height, long width, bool antialias)
    {
        long h = image.size(1), w = image.size(2);
        if (h == height && w == width) return image;
        if (antialias && (height < h || width < w))
        {
            // Separable: rows then columns, each a matrix product with the filter weights.
            using var rows = Weights(h, height);
            using var cols = Weights(w, width);
            using var colsT = cols.t();
            using var tall = rows.matmul(image);
            return tall.matmul(colsT);
        }
        using var batch = image.unsqueeze(0);
        using var resized = nn.functional.interpolate(batch, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
        return resized.squeeze(0);
    }

    /// <summary>
    /// [output, input] weights of the triangle filter as PIL's ImagingResample and PyTorch's antialiased bilinear
    /// compute them: the filter is widened by the scale when shrinking, and each row is normalised to sum 1.
    /// When enlarging they are exactly align_corners = false bilinear weights.
    /// </summary>
    internal static Tensor Weights(long input, long output)
    {
        var scale = (double)input / output;
        var support = Math.Max(scale, 1.0); // the triangle's half-width in input pixels
        var weights = new float[output * input];
        for (var i = 0; i < output; i++)
        {
            var center = scale * (i + 0.5);
            var lo = Math.Max((long)(center - support + 0.5), 0); // truncation toward zero, as in PIL
            var hi = Math.Min((long)(center + support + 0.5), input);
            double sum = 0;
            for (var j = lo; j < hi; j++) sum += Triangle((j - center + 0.5) / support);
            for (var j = lo; j < hi; j++) weights[i * input + j] = (float)(Triangle((j - center + 0.5) / support) / sum);
        }
        return torch.tensor(weights, [output, input]);
    }

    private static double Triangle(double x) => Math.Max(0, 1 - Math.Abs(x));
}
